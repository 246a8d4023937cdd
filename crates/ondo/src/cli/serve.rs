//! `ondo serve MODEL`: the OpenAI-compatible HTTP server. It listens at once (503 while the
//! model loads) and stops gracefully on SIGINT/SIGTERM. The chat page is at `/` unless `--no-webui`.

use super::ModelArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 = any free port; the log line says which)
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Require `Authorization: Bearer KEY` on every API route
    #[arg(long, env = "ONDO_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The model name clients send and /v1/models lists (default: MODEL as given)
    #[arg(long)]
    served_model_name: Option<String>,
    /// Cap on prompt plus completion tokens (default: the model's context)
    #[arg(long)]
    max_model_len: Option<usize>,
    /// Largest request body accepted, in bytes
    #[arg(long, default_value_t = 8 << 20)]
    max_body_bytes: usize,
    /// Allow cross-origin requests from any origin (browsers)
    #[arg(long)]
    cors: bool,
    /// Seconds a client has to send its whole request head (slower clients are dropped)
    #[arg(long, default_value_t = 10.0)]
    header_read_timeout: f64,
    /// Largest request head (request line and headers) accepted, in bytes: 431 above
    #[arg(long, default_value_t = 64 << 10)]
    max_header_bytes: usize,
    /// Most messages one chat request may have
    #[arg(long, default_value_t = 4096)]
    max_messages: usize,
    /// Do not serve the chat page at / (the API routes stay)
    #[arg(long)]
    no_webui: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = ondo_server::Config {
        host: args.host,
        port: args.port,
        api_key: args.api_key.filter(|k| !k.is_empty()),
        model_name: args.served_model_name.unwrap_or_else(|| args.model.model.clone()),
        max_model_len: args.max_model_len,
        max_body_bytes: args.max_body_bytes,
        cors: args.cors,
        header_read_timeout: std::time::Duration::try_from_secs_f64(args.header_read_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| anyhow::anyhow!("--header-read-timeout must be a positive number of seconds"))?,
        max_header_bytes: args.max_header_bytes,
        max_messages: args.max_messages,
        webui: !args.no_webui,
    };
    let model = args.model;
    ondo_server::run_blocking(config, move || {
        let llm = model.load().map_err(|e| format!("{e:#}"))?;
        let engine = llm.engine().map_err(|e| format!("{e:#}"))?;
        let limits = engine.limits();
        eprintln!(
            "KV cache: {} tokens ({} blocks of {}); up to {} sequences and {} tokens per step",
            limits.kv_tokens,
            limits.kv_tokens / engine.block_size(),
            engine.block_size(),
            model.max_num_seqs,
            model.max_num_batched_tokens
        );
        Ok(llm)
    })?;
    Ok(())
}
