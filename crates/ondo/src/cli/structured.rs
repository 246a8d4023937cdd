//! Structured-output flags: `--json-schema FILE | --regex R | --choice a,b,c | --grammar FILE`
//! become `SamplingParams::structured_outputs` (vLLM's `json`, `regex`, `choice`, `grammar`).

use anyhow::{bail, Context};
use ondo_engine::StructuredOutputs;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct StructuredArgs {
    /// The output is JSON matching the JSON schema in FILE
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<std::path::PathBuf>,
    /// The output matches this regular expression
    #[arg(long, value_name = "REGEX", allow_hyphen_values = true)]
    pub regex: Option<String>,
    /// The output is one of these strings, comma-separated
    #[arg(long, value_name = "A,B,C", value_delimiter = ',')]
    pub choice: Option<Vec<String>>,
    /// The output matches the grammar (llguidance's Lark syntax) in FILE
    #[arg(long, value_name = "FILE")]
    pub grammar: Option<std::path::PathBuf>,
}

impl StructuredArgs {
    /// The constraint the flags ask for (at most one of them).
    pub fn constraint(&self) -> anyhow::Result<Option<StructuredOutputs>> {
        let given = [
            self.json_schema.is_some(),
            self.regex.is_some(),
            self.choice.is_some(),
            self.grammar.is_some(),
        ];
        match given.iter().filter(|&&g| g).count() {
            0 => return Ok(None),
            1 => {}
            _ => bail!("give only one of --json-schema, --regex, --choice, --grammar"),
        }
        let mut so = StructuredOutputs::default();
        if let Some(path) = &self.json_schema {
            let text = read(path, "--json-schema")?;
            let schema = serde_json::from_str(&text)
                .with_context(|| format!("--json-schema {}: not valid JSON", path.display()))?;
            so.json = Some(schema);
        }
        so.regex.clone_from(&self.regex);
        so.choice.clone_from(&self.choice);
        if let Some(path) = &self.grammar {
            so.grammar = Some(read(path, "--grammar")?);
        }
        so.validate()?;
        Ok(Some(so))
    }
}

fn read(path: &std::path::Path, flag: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{flag} {}: cannot read the file", path.display()))
}
