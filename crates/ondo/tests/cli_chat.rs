//! `ondo chat` on SmolLM2-135M-Instruct with greedy decoding:
//! - through a pseudo-terminal (rustyline's path): two turns, where the second rendered prompt
//!   holds the first answer (seen through the hidden `--debug-prompt` stderr lines);
//! - with piped stdin: `/reset` and `/system`, and SIGINT ending an answer without ending the
//!   session (the partial answer stays in the history).

use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(300);

fn model() -> Option<String> {
    ondo_testdata::fetched("smollm2-135m-instruct-q4_1.gguf").map(|p| p.to_str().unwrap().to_string())
}

fn chat_command(model: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ondo"));
    cmd.args(["chat", model, "--temperature", "0", "--debug-prompt", "-t", "1"])
        .args(extra);
    cmd.env("HF_HUB_OFFLINE", "1");
    cmd
}

/// Bytes a reader thread collects, shared with the test.
#[derive(Clone, Default)]
struct Collected(Arc<Mutex<Vec<u8>>>);

impl Collected {
    fn spawn_reader(mut source: impl Read + Send + 'static) -> Collected {
        let c = Collected::default();
        let sink = c.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = source.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.0.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        c
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The `--debug-prompt` records so far (whole lines only: a record can arrive in pieces).
    fn debug_prompts(&self) -> Vec<Value> {
        let text = self.text();
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        let lines = complete.lines().filter_map(|l| l.strip_prefix("[debug-prompt] "));
        lines
            .map(|l| serde_json::from_str(l).expect("debug-prompt JSON"))
            .collect()
    }
}

/// Polls `ready` until it holds; panics (killing the child) after the deadline.
fn wait_until(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool, log: impl Fn() -> String) {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() > DEADLINE || matches!(child.try_wait(), Ok(Some(_))) {
            let _ = child.kill();
            panic!("ondo chat: gave up waiting for {what}; output:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("ondo chat did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tokens(v: &Value) -> u64 {
    v["tokens"].as_u64().unwrap()
}

fn prompt(v: &Value) -> &str {
    v["prompt"].as_str().unwrap()
}

/// The assistant's text in `later` right after the earlier prompt `earlier` (up to `<|im_end|>`).
fn answer_after<'a>(earlier: &str, later: &'a str) -> &'a str {
    let rest = later
        .strip_prefix(earlier)
        .unwrap_or_else(|| panic!("{later:?} does not extend {earlier:?}"));
    rest.split("<|im_end|>").next().unwrap()
}

/// Token count of `text` by `ondo tokenize` (no BOS added).
fn count_tokens(model: &str, text: &str) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_ondo"))
        .args(["tokenize", model, "--json", "--no-add-special", text])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["ids"].as_array().unwrap().len() as u64
}

// ---- through a pseudo-terminal ----

/// A pty pair: (master, slave) as files.
fn open_pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 200,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two fds we then own; the other pointers are null or valid.
    let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds are fresh and owned by nothing else.
    unsafe { (std::fs::File::from_raw_fd(master), std::fs::File::from_raw_fd(slave)) }
}

/// Terminal output without escape sequences and carriage returns.
fn plain_terminal_text(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() || c == '~' {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The terminal shows the `>>> ` prompt as its last text.
fn at_prompt(term: &Collected) -> bool {
    plain_terminal_text(&term.text()).ends_with(">>> ")
}

/// `ondo chat` with the slave side of a new pty as its controlling terminal (stdin, stdout),
/// stderr piped. Returns the child, the terminal's output, stderr, and the keyboard (master).
fn spawn_on_pty(model: &str, extra: &[&str]) -> (Child, Collected, Collected, std::fs::File) {
    use std::os::unix::process::CommandExt;
    let (master, slave) = open_pty();
    let mut cmd = chat_command(model, extra);
    cmd.env("TERM", "xterm")
        .stdin(slave.try_clone().unwrap())
        .stdout(slave)
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A new session whose controlling terminal is the pty: Ctrl-C there sends SIGINT.
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn ondo chat");
    drop(cmd); // closes our copies of the slave side
    let term = Collected::spawn_reader(master.try_clone().unwrap());
    let stderr = Collected::spawn_reader(child.stderr.take().unwrap());
    (child, term, stderr, master)
}

#[test]
fn two_turns_through_a_terminal_keep_history() {
    let Some(model) = model() else { return };
    let (mut child, term, stderr, mut keys) = spawn_on_pty(&model, &["--max-tokens", "24"]);
    let log = || {
        format!(
            "terminal:\n{}\nstderr:\n{}",
            plain_terminal_text(&term.text()),
            stderr.text()
        )
    };

    let questions = ["What is the capital of France?", "And of Germany?"];
    for (turn, q) in questions.iter().enumerate() {
        wait_until(
            &mut child,
            "the prompt",
            || at_prompt(&term) && stderr.debug_prompts().len() == turn,
            log,
        );
        keys.write_all(format!("{q}\r").as_bytes()).unwrap();
        wait_until(
            &mut child,
            "the answer",
            || stderr.debug_prompts().len() == turn + 1,
            log,
        );
    }
    wait_until(&mut child, "the last prompt", || at_prompt(&term), log);
    // Ctrl-C at the prompt drops the line being typed and asks again.
    let before = term.text().len();
    keys.write_all(b"not sent\x03").unwrap();
    wait_until(
        &mut child,
        "a fresh prompt",
        || term.text().len() > before && at_prompt(&term),
        log,
    );
    keys.write_all(b"/exit\r").unwrap();
    assert!(wait_exit(&mut child).success(), "{}", log());

    let records = stderr.debug_prompts();
    assert_eq!(records.len(), 2, "{}", log());
    let (first, second) = (&records[0], &records[1]);
    assert!(prompt(first).contains(questions[0]) && prompt(second).contains(questions[1]));
    let answer = answer_after(prompt(first), prompt(second));
    assert!(!answer.trim().is_empty(), "{}", log());
    let shown = plain_terminal_text(&term.text());
    assert!(
        shown.contains(answer.trim()),
        "the answer was streamed to the terminal: {answer:?}\n{}",
        log()
    );
    // The second prompt grew by the first answer, not just by the second question.
    let question_turn = format!("<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n", questions[1]);
    let growth = tokens(second) - tokens(first);
    assert!(
        growth > count_tokens(&model, &question_turn) + 1,
        "growth {growth}\n{}",
        log()
    );
}

#[test]
fn ctrl_c_in_the_terminal_stops_the_answer() {
    let Some(model) = model() else { return };
    // An answer that would run for minutes unless stopped.
    let (mut child, term, stderr, mut keys) = spawn_on_pty(&model, &["--max-tokens", "4000", "--ignore-eos"]);
    let log = || {
        format!(
            "terminal:\n{}\nstderr:\n{}",
            plain_terminal_text(&term.text()),
            stderr.text()
        )
    };
    wait_until(&mut child, "the prompt", || at_prompt(&term), log);
    keys.write_all(b"Tell me a long story.\r").unwrap();
    let asked = term.text().len() + 40;
    wait_until(&mut child, "the answer to stream", || term.text().len() > asked, log);
    keys.write_all(b"\x03").unwrap();
    wait_until(&mut child, "[stopped]", || stderr.text().contains("[stopped]"), log);
    wait_until(&mut child, "the next prompt", || at_prompt(&term), log);
    keys.write_all(b"/exit\r").unwrap();
    assert!(wait_exit(&mut child).success(), "{}", log());
    assert_eq!(stderr.debug_prompts().len(), 1, "{}", log());
}

// ---- with piped stdin ----

/// Runs a piped session over `input`; returns (stdout, stderr).
fn piped_session(model: &str, extra: &[&str], input: &str) -> (String, String) {
    let mut child = chat_command(model, extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = Collected::spawn_reader(child.stdout.take().unwrap());
    let err = Collected::spawn_reader(child.stderr.take().unwrap());
    let status = wait_exit(&mut child);
    std::thread::sleep(Duration::from_millis(100)); // let the readers drain
    assert!(status.success(), "{}", err.text());
    (out.text(), err.text())
}

#[test]
fn piped_lines_reset_and_system() {
    let Some(model) = model() else { return };
    let input = "Hi\n/reset\nHi\n/system Answer in French.\n\nHi\n/exit\nnever read\n";
    let (stdout, stderr) = piped_session(&model, &["--max-tokens", "8"], input);
    let collected = Collected(Arc::new(Mutex::new(stderr.clone().into_bytes())));
    let records = collected.debug_prompts();
    assert_eq!(records.len(), 3, "{stderr}");
    assert_eq!(records[0], records[1], "after /reset the prompt is the first one again");
    assert!(prompt(&records[2]).contains("Answer in French."), "{stderr}");
    assert!(
        !prompt(&records[2]).contains(prompt(&records[0])),
        "/reset kept the history empty"
    );
    assert!(stderr.contains("[history cleared]"));
    let answers: Vec<&str> = stdout.lines().collect();
    assert_eq!(answers.len(), 3, "one line per answer, no prompt printed: {stdout:?}");
    assert_eq!(answers[0], answers[1], "greedy answers to the same prompt agree");
}

/// Waits until `out` has grown past `len` bytes, then sends SIGINT, then waits for `[stopped]`
/// number `stops` on stderr.
fn interrupt_answer(child: &mut Child, out: &Collected, err: &Collected, len: usize, stops: usize) {
    wait_until(child, "the answer to start", || out.text().len() > len, || err.text());
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    wait_until(
        child,
        "[stopped]",
        || err.text().matches("[stopped]").count() == stops,
        || err.text(),
    );
    std::thread::sleep(Duration::from_millis(300)); // the newline after the answer, read by another thread
}

#[test]
fn sigint_ends_the_answer_not_the_session() {
    let Some(model) = model() else { return };
    // Answers that would run for minutes unless stopped.
    let mut child = chat_command(&model, &["--max-tokens", "4000", "--ignore-eos"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let out = Collected::spawn_reader(child.stdout.take().unwrap());
    let err = Collected::spawn_reader(child.stderr.take().unwrap());
    stdin.write_all(b"Tell me a very long story.\n").unwrap();
    interrupt_answer(&mut child, &out, &err, 0, 1);
    let first_shown = out.text();
    stdin.write_all(b"Thanks\n").unwrap();
    interrupt_answer(&mut child, &out, &err, first_shown.len(), 2);
    drop(stdin); // end of input ends the session
    assert!(wait_exit(&mut child).success(), "{}", err.text());
    let records = err.debug_prompts();
    assert_eq!(records.len(), 2, "{}", err.text());
    // The first answer's prompt ended where the answer began; the second holds what was shown.
    let kept = answer_after(prompt(&records[0]), prompt(&records[1]));
    assert!(!kept.is_empty(), "{}", err.text());
    assert_eq!(
        format!("{kept}\n"),
        first_shown,
        "history keeps exactly the streamed part"
    );
    assert!(kept.len() < 2000, "stopped early: {} bytes", kept.len());
}
