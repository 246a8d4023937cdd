//! `ondo chat MODEL [--system TEXT] [sampling flags]`: an interactive multi-turn session.
//!
//! Each answer is streamed as it is generated and kept in the history the next turn renders.
//! On a terminal, lines are read with rustyline (editing, history); otherwise stdin is read a
//! line at a time and no prompt is printed. Commands: `/reset` (forget the conversation),
//! `/system TEXT` (set the system message; no TEXT removes it), `/exit`, `/help`.
//!
//! Ctrl-C while an answer streams ends that answer (the part already written stays in the
//! history) and the session goes on; a second Ctrl-C before the answer ends (e.g. during a long
//! prompt) quits. At the terminal prompt Ctrl-C clears the line and Ctrl-D leaves.

use super::sampling::SamplingArgs;
use super::ModelArgs;
use anyhow::bail;
use ondo::{FinishReason, Llm, SamplingParams};
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// A system message for the whole session
    #[arg(long)]
    system: Option<String>,
    /// After each answer, print {"tokens": N, "prompt": TEXT} of the rendered prompt to stderr
    #[arg(long, hide = true)]
    debug_prompt: bool,
    #[command(flatten)]
    sampling: SamplingArgs,
}

const HELP: &str = "/reset forgets the conversation, /system TEXT sets the system message, /exit leaves; \
Ctrl-C stops an answer";

pub fn run(args: Args) -> anyhow::Result<()> {
    let llm = args.model.load()?;
    if llm.chat_template().is_none() {
        bail!(
            "{}: the model has no chat template; use `ondo run` for plain completion",
            llm.source().display()
        );
    }
    let mut params = llm.default_params();
    if args.sampling.max_tokens.is_none() && params.max_tokens == Some(16) {
        params.max_tokens = Some(1024); // vLLM's 16-token default is too short for a chat answer
    }
    let params = args.sampling.apply(params)?;
    // rustyline installs its own SIGINT handler when the editor is made: ours go in after it
    // (signal-hook chains to it), or a Ctrl-C during an answer would never reach `stop`.
    let mut input = Input::new()?;
    let stop = Arc::new(AtomicBool::new(false));
    // A Ctrl-C while `stop` is already set (the answer has not ended yet) quits.
    signal_hook::flag::register_conditional_shutdown(signal_hook::consts::SIGINT, 130, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    let mut session = Session {
        llm,
        params,
        system: args.system,
        history: vec![],
        debug: args.debug_prompt,
        stop,
    };
    if input.is_terminal() {
        eprintln!("{HELP}");
    }
    while let Some(line) = input.next_line()? {
        if !session.handle(line.trim())? {
            break;
        }
    }
    Ok(())
}

/// The conversation so far and how to continue it.
struct Session {
    llm: Llm,
    params: SamplingParams,
    system: Option<String>,
    /// User and assistant turns, in order.
    history: Vec<Value>,
    debug: bool,
    /// Set by SIGINT: the streaming answer stops at its next delta.
    stop: Arc<AtomicBool>,
}

impl Session {
    /// Acts on one input line; false = leave.
    fn handle(&mut self, line: &str) -> anyhow::Result<bool> {
        match line.split_once(' ').map_or((line, ""), |(c, rest)| (c, rest.trim())) {
            ("", _) => {}
            ("/exit" | "/quit" | "/bye", _) => return Ok(false),
            ("/reset" | "/clear", _) => {
                self.history.clear();
                eprintln!("[history cleared]");
            }
            ("/system", text) => {
                self.system = Some(text.to_string()).filter(|t| !t.is_empty());
                eprintln!(
                    "[system message {}]",
                    if self.system.is_some() { "set" } else { "removed" }
                );
            }
            ("/help" | "/?", _) => eprintln!("{HELP}"),
            (cmd, _) if cmd.starts_with('/') => eprintln!("unknown command {cmd}; {HELP}"),
            _ => self.answer(line)?,
        }
        Ok(true)
    }

    /// The system message (when set) and the history.
    fn messages(&self) -> Vec<Value> {
        let system = self.system.as_ref().map(|s| json!({"role": "system", "content": s}));
        system.into_iter().chain(self.history.iter().cloned()).collect()
    }

    /// Streams the answer to `question` to stdout and keeps both turns. A failed answer (e.g.
    /// a prompt past the context) is reported and leaves the history as it was.
    fn answer(&mut self, question: &str) -> anyhow::Result<()> {
        self.history.push(json!({"role": "user", "content": question}));
        let messages = self.messages();
        self.stop.store(false, Ordering::SeqCst);
        let mut stdout = std::io::stdout().lock();
        let stop = &self.stop;
        // What the user saw of the first sequence: the history keeps exactly this.
        let mut shown = String::new();
        let mut sink = |index: usize, delta: &str| {
            if index != 0 {
                return true;
            }
            if stop.load(Ordering::SeqCst) || stdout.write_all(delta.as_bytes()).and_then(|_| stdout.flush()).is_err() {
                return false;
            }
            shown.push_str(delta);
            true
        };
        let result = self.llm.chat(&messages, &self.params, &mut sink);
        let interrupted = self.stop.swap(false, Ordering::SeqCst);
        writeln!(stdout)?;
        stdout.flush()?;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                self.history.pop();
                eprintln!("error: {e}");
                return Ok(());
            }
        };
        let aborted = out.outputs.first().and_then(|o| o.finish_reason) == Some(FinishReason::Abort);
        if interrupted || aborted {
            eprintln!("[stopped]");
        }
        if self.debug {
            eprintln!(
                "[debug-prompt] {}",
                json!({"tokens": out.prompt_token_ids.len(), "prompt": out.prompt})
            );
        }
        self.history.push(json!({"role": "assistant", "content": shown}));
        Ok(())
    }
}

/// Where lines come from: a line editor on a terminal, plain lines otherwise.
enum Input {
    Editor(Box<DefaultEditor>),
    Lines(std::io::StdinLock<'static>),
}

impl Input {
    fn new() -> anyhow::Result<Input> {
        if std::io::stdin().is_terminal() {
            Ok(Input::Editor(Box::new(DefaultEditor::new()?)))
        } else {
            Ok(Input::Lines(std::io::stdin().lock()))
        }
    }

    fn is_terminal(&self) -> bool {
        matches!(self, Input::Editor(_))
    }

    /// The next line, or None at the end of input.
    fn next_line(&mut self) -> anyhow::Result<Option<String>> {
        match self {
            Input::Editor(ed) => loop {
                match ed.readline(">>> ") {
                    Ok(line) => {
                        if !line.trim().is_empty() {
                            ed.add_history_entry(line.as_str())?;
                        }
                        return Ok(Some(line));
                    }
                    Err(ReadlineError::Interrupted) => continue,
                    Err(ReadlineError::Eof) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            },
            Input::Lines(stdin) => {
                let mut line = String::new();
                if stdin.read_line(&mut line)? == 0 {
                    return Ok(None);
                }
                Ok(Some(line.trim_end_matches(['\n', '\r']).to_string()))
            }
        }
    }
}
