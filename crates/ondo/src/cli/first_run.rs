//! What ondo says to someone new: `ondo` alone, or `ondo run`/`ondo chat` without a model,
//! prints a short start guide naming a small model and the command that fetches it, instead of
//! clap's usage error. Every other parse error is clap's own.

use clap::error::ErrorKind;
use std::process::ExitCode;

/// A small instruct model (135M parameters, about 270 MB) that runs on any machine.
pub const STARTER_MODEL: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

pub fn guide() -> String {
    format!(
        "ondo runs open language models on your own machine.\n\
         \n\
         Start with a small model:\n\
         \x20 ondo pull {STARTER_MODEL}\n\
         \x20 ondo chat {STARTER_MODEL}\n\
         \n\
         MODEL is a hub id (org/name, or org/name:Q4_K_M for one file of a GGUF repo),\n\
         a model folder or a .gguf file. Add --offline to use only the local cache.\n\
         \n\
         \x20 ondo run MODEL \"PROMPT\"    complete a prompt\n\
         \x20 ondo serve MODEL           OpenAI-compatible server, chat page at http://127.0.0.1:8000/\n\
         \x20 ondo models                what is downloaded\n\
         \n\
         All commands: ondo --help\n"
    )
}

pub fn print_help() {
    print!("{}", guide());
}

/// The guide (exit status 2) for a missing model on `run`/`chat`; clap's message otherwise.
pub fn on_parse_error(e: clap::Error) -> ExitCode {
    let subcommand = std::env::args().nth(1).unwrap_or_default();
    if e.kind() == ErrorKind::MissingRequiredArgument && matches!(subcommand.as_str(), "run" | "chat") {
        eprintln!("ondo {subcommand} needs a MODEL.\n");
        eprint!("{}", guide());
        return ExitCode::from(2);
    }
    let _ = e.print();
    ExitCode::from(e.exit_code().clamp(0, 255) as u8)
}
