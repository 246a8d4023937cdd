//! The `ondo` command-line tool. Each subcommand lives in `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
