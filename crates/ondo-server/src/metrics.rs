//! `/metrics` in Prometheus' text format. Names follow vLLM's (`vllm:` prefix) where vLLM has
//! the metric, so its dashboards work; ondo's own request counters keep their `ondo_` names.
//! "running" and "waiting" count scheduler sequences (a request with `best_of > 1` runs as that
//! many once its prompt is computed).

use crate::engine::Engine;
use ondo_engine::metrics::Histogram;
use ondo_engine::EngineStats;
use std::fmt::Write;
use std::sync::atomic::AtomicU64;

pub fn render(engine: &Engine) -> String {
    let s = engine.stats();
    let get = EngineStats::get;
    let mut out = String::new();
    let gauges: [(&str, &AtomicU64); 5] = [
        ("vllm:num_requests_running", &s.requests_running),
        ("vllm:num_requests_waiting", &s.requests_waiting),
        ("ondo_kv_blocks_used", &s.kv_blocks_used),
        ("ondo_kv_blocks_free", &s.kv_blocks_free),
        ("ondo_kv_blocks_total", &s.kv_blocks_total),
    ];
    for (name, v) in gauges {
        let _ = writeln!(out, "# TYPE {name} gauge\n{name} {}", get(v));
    }
    let used = get(&s.kv_blocks_used) as f64 / get(&s.kv_blocks_total).max(1) as f64;
    let _ = writeln!(
        out,
        "# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc {used}"
    );
    let counters: [(&str, &AtomicU64); 12] = [
        ("vllm:prompt_tokens_total", &s.prompt_tokens),
        ("vllm:generation_tokens_total", &s.generation_tokens),
        ("vllm:prefix_cache_queries_total", &s.prefix_cache_queries),
        ("vllm:prefix_cache_hits_total", &s.prefix_cache_hits),
        ("vllm:num_preemptions_total", &s.preemptions),
        ("ondo_prompt_tokens_total", &s.prompt_tokens),
        ("ondo_generation_tokens_total", &s.generation_tokens),
        ("ondo_requests_finished_total", &s.requests_finished),
        ("ondo_requests_aborted_total", &s.requests_aborted),
        ("ondo_requests_failed_total", &s.requests_failed),
        ("ondo_engine_steps_total", &s.steps),
        ("ondo_computed_tokens_total", &s.computed_tokens),
    ];
    for (name, v) in counters {
        let _ = writeln!(out, "# TYPE {name} counter\n{name} {}", get(v));
    }
    let _ = writeln!(
        out,
        "# TYPE ondo_requests_total counter\nondo_requests_total {}",
        engine.requests_total()
    );
    // the earlier names of the two gauges
    let _ = writeln!(
        out,
        "ondo_requests_running {}\nondo_requests_waiting {}",
        get(&s.requests_running),
        get(&s.requests_waiting)
    );
    let queries = get(&s.prefix_cache_queries);
    let rate = if queries == 0 {
        0.0
    } else {
        get(&s.prefix_cache_hits) as f64 / queries as f64
    };
    let _ = writeln!(
        out,
        "# TYPE ondo_prefix_cache_hit_rate gauge\nondo_prefix_cache_hit_rate {rate}"
    );
    histogram(&mut out, "vllm:time_to_first_token_seconds", &s.time_to_first_token);
    histogram(&mut out, "vllm:inter_token_latency_seconds", &s.inter_token_latency);
    out
}

fn histogram(out: &mut String, name: &str, h: &Histogram) {
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (bound, count) in h.buckets() {
        let le = if bound.is_infinite() {
            "+Inf".to_string()
        } else {
            bound.to_string()
        };
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", h.sum(), h.count());
}
