//! Python `SamplingParams` -> the engine's `SamplingParams`, field by field.
//!
//! Only types are checked here (each error names its field); counts given as negative numbers
//! go through `ondo_engine::params::count_param`, and every range rule is the engine's
//! `SamplingParams::validate`, so the rules and their wording live in one place.

use ondo_engine::params::count_param;
use ondo_engine::{LogprobsMode, SamplingParams, StructuredOutputs};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use serde_json::Value;
use std::collections::BTreeMap;

fn type_error(field: &str, want: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let repr = got.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into());
    PyValueError::new_err(format!("{field} must be {want}, got {repr}"))
}

/// `obj.<field>`, or `None` when it is missing or None.
fn attr<'py>(obj: &Bound<'py, PyAny>, field: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    match obj.getattr(field) {
        Ok(v) if v.is_none() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(_) => Ok(None),
    }
}

fn int(field: &str, v: &Bound<'_, PyAny>) -> PyResult<i64> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(type_error(field, "an integer", v));
    }
    v.extract::<i64>()
        .map_err(|_| type_error(field, "an integer that fits in 64 bits", v))
}

fn float(field: &str, v: &Bound<'_, PyAny>) -> PyResult<f32> {
    if v.is_instance_of::<PyBool>() || !(v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>()) {
        return Err(type_error(field, "a number", v));
    }
    Ok(v.extract::<f64>()? as f32)
}

fn boolean(field: &str, v: &Bound<'_, PyAny>) -> PyResult<bool> {
    v.extract::<bool>().map_err(|_| type_error(field, "True or False", v))
}

fn token_id(field: &str, v: &Bound<'_, PyAny>) -> PyResult<u32> {
    let id = int(field, v)?;
    u32::try_from(id).map_err(|_| type_error(field, "token ids (non-negative integers)", v))
}

fn token_ids(field: &str, v: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
    if v.is_instance_of::<PyString>() {
        return Err(type_error(field, "a list of token ids", v));
    }
    v.try_iter()
        .map_err(|_| type_error(field, "a list of token ids", v))?
        .map(|item| token_id(field, &item?))
        .collect()
}

fn count(obj: &Bound<'_, PyAny>, field: &'static str) -> PyResult<Option<usize>> {
    match attr(obj, field)? {
        None => Ok(None),
        Some(v) => Ok(Some(
            count_param(field, int(field, &v)?).map_err(|e| PyValueError::new_err(e.to_string()))?,
        )),
    }
}

/// The engine's `SamplingParams` from any object with vLLM's attribute names (a missing or None
/// attribute takes vLLM's default), validated by the engine's rules.
pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<SamplingParams> {
    let mut p = SamplingParams::default();
    p.n = count(obj, "n")?.unwrap_or(p.n);
    p.best_of = count(obj, "best_of")?;
    for (field, slot) in [
        ("presence_penalty", &mut p.presence_penalty),
        ("frequency_penalty", &mut p.frequency_penalty),
        ("repetition_penalty", &mut p.repetition_penalty),
        ("temperature", &mut p.temperature),
        ("top_p", &mut p.top_p),
        ("min_p", &mut p.min_p),
    ] {
        if let Some(v) = attr(obj, field)? {
            *slot = float(field, &v)?;
        }
    }
    if let Some(v) = attr(obj, "top_k")? {
        let k = int("top_k", &v)?;
        // Out of i32's range is as wrong as below -1: let validate word it.
        p.top_k = i32::try_from(k).unwrap_or(if k < 0 { i32::MIN } else { i32::MAX });
    }
    if let Some(v) = attr(obj, "seed")? {
        // Python ints: negative seeds are taken modulo 2^64 (as the JSON form does).
        p.seed = Some(match v.extract::<u64>() {
            Ok(u) => u,
            Err(_) => int("seed", &v)? as u64,
        });
    }
    p.stop = match attr(obj, "stop")? {
        None => Vec::new(),
        Some(v) if v.is_instance_of::<PyString>() => vec![v.extract()?],
        Some(v) => v
            .extract::<Vec<String>>()
            .map_err(|_| type_error("stop", "a string or a list of strings", &v))?,
    };
    if let Some(v) = attr(obj, "stop_token_ids")? {
        p.stop_token_ids = token_ids("stop_token_ids", &v)?;
    }
    for (field, slot) in [
        ("include_stop_str_in_output", &mut p.include_stop_str_in_output),
        ("ignore_eos", &mut p.ignore_eos),
        ("skip_special_tokens", &mut p.skip_special_tokens),
        ("spaces_between_special_tokens", &mut p.spaces_between_special_tokens),
    ] {
        if let Some(v) = attr(obj, field)? {
            *slot = boolean(field, &v)?;
        }
    }
    // `max_tokens=None` means "up to the model's length", unlike a missing attribute.
    p.max_tokens = match obj.hasattr("max_tokens")? {
        true => count(obj, "max_tokens")?,
        false => p.max_tokens,
    };
    p.min_tokens = count(obj, "min_tokens")?.unwrap_or(0);
    p.logprobs = count(obj, "logprobs")?;
    p.prompt_logprobs = count(obj, "prompt_logprobs")?;
    if let Some(v) = attr(obj, "logit_bias")? {
        let dict = v
            .cast::<PyDict>()
            .map_err(|_| type_error("logit_bias", "a dict of {token_id: bias}", &v))?;
        let mut bias = BTreeMap::new();
        for (k, b) in dict.iter() {
            bias.insert(token_id("logit_bias", &k)?, float("logit_bias", &b)?);
        }
        p.logit_bias = bias;
    }
    if let Some(v) = attr(obj, "allowed_token_ids")? {
        p.allowed_token_ids = Some(token_ids("allowed_token_ids", &v)?);
    }
    if let Some(v) = attr(obj, "logprobs_mode")? {
        p.logprobs_mode = match v.extract::<String>().as_deref() {
            Ok("raw_logprobs" | "raw") => LogprobsMode::RawLogprobs,
            Ok("processed_logprobs" | "processed") => LogprobsMode::ProcessedLogprobs,
            _ => {
                return Err(type_error(
                    "logprobs_mode",
                    "'raw_logprobs' or 'processed_logprobs'",
                    &v,
                ))
            }
        };
    }
    if let Some(v) = attr(obj, "structured_outputs")? {
        p.structured_outputs = Some(structured_outputs(&v)?);
    }
    p.validate().map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(p)
}

/// vLLM's `StructuredOutputsParams` (any object with its attribute names, or a dict of them):
/// `json` (a schema dict or its JSON text), `json_object`, `regex`, `choice`, `grammar`. Which
/// are set and whether the schema compiles is the engine's to check.
fn structured_outputs(v: &Bound<'_, PyAny>) -> PyResult<StructuredOutputs> {
    let field = |name: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        match v.cast::<PyDict>() {
            Ok(d) => Ok(d.get_item(name)?.filter(|x| !x.is_none())),
            Err(_) => attr(v, name),
        }
    };
    let text = |name: &str, x: &Bound<'_, PyAny>| {
        x.extract::<String>()
            .map_err(|_| type_error(&format!("structured_outputs.{name}"), "a string", x))
    };
    let mut so = StructuredOutputs::default();
    if let Some(x) = field("json")? {
        so.json = Some(json_value(&x)?);
    }
    if let Some(x) = field("json_object")? {
        so.json_object = boolean("structured_outputs.json_object", &x)?;
    }
    so.regex = field("regex")?.map(|x| text("regex", &x)).transpose()?;
    so.grammar = field("grammar")?.map(|x| text("grammar", &x)).transpose()?;
    if let Some(x) = field("choice")? {
        let list = x
            .extract::<Vec<String>>()
            .ok()
            .filter(|_| !x.is_instance_of::<PyString>());
        so.choice = Some(list.ok_or_else(|| type_error("structured_outputs.choice", "a list of strings", &x))?);
    }
    Ok(so)
}

/// A schema: its JSON text as given, or a dict turned into JSON by Python's `json`.
fn json_value(x: &Bound<'_, PyAny>) -> PyResult<Value> {
    if x.is_instance_of::<PyString>() {
        return Ok(Value::String(x.extract()?));
    }
    let dumped = x
        .py()
        .import("json")?
        .call_method1("dumps", (x,))
        .map_err(|_| type_error("structured_outputs.json", "a JSON schema (a dict or its JSON text)", x))?;
    serde_json::from_str(&dumped.extract::<String>()?)
        .map_err(|e| PyValueError::new_err(format!("structured_outputs.json is not JSON: {e}")))
}
