//! The deploy files (`deploy/prometheus/alerts.yml`, `deploy/grafana/
//! evident.json`) refer only to metrics the server exports.
//!
//! The exported names come from the server itself: a fresh [`Metrics`]
//! with one observation of each kind (so every family and histogram has a
//! sample), rendered as `/metrics` renders it. Every identifier in every
//! PromQL expression of the two files must be such a sample name, a PromQL
//! function or keyword, or a label name; so renaming a metric without
//! updating the files fails here. No promtool needed; when it is on PATH
//! (Debian's `prometheus` package), the rules are also loaded and their
//! unit tests (`deploy/prometheus/alerts_test.yml`) run with it.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use evident_server::metrics::Metrics;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

fn repo_file(path: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every sample name `/metrics` shows, each metric observed once.
fn exported() -> BTreeSet<String> {
    let m = Metrics::new();
    m.observe_http(
        "/v1/logs/{log}/entries",
        "POST",
        201,
        Duration::from_millis(2),
    );
    m.observe_batch(10, 10, Duration::from_millis(3));
    m.observe_append(Duration::from_millis(4), true);
    m.set_db_up(true);
    m.observe_verification("valid", 0, 0, 0);
    m.set_verification_lag(5);
    m.auth_failure("auth.invalid");
    m.rate_limited();
    m.system_event_dropped();
    let text = m.render(1);
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

/// PromQL's (and Grafana's query variables') functions, aggregations and
/// keywords that may appear in our expressions.
const PROMQL_WORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "rate",
    "irate",
    "increase",
    "delta",
    "histogram_quantile",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "absent",
    "absent_over_time",
    "vector",
    "clamp_min",
    "and",
    "or",
    "unless",
    "on",
    "ignoring",
    "by",
    "without",
    "bool",
    "offset",
    "label_values",
];

/// The identifiers of a PromQL expression that name series: what is left
/// after strings, label matchers (`{…}`), ranges (`[…]`), grouping label
/// lists (`by (…)`, `on (…)`, …), numbers and `$variables` are set aside.
fn series_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    // The word before the current position, to recognise `by (`, etc.
    let mut last_word = String::new();
    let mut call_label_values = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
            }
            '(' if matches!(
                last_word.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) =>
            {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                last_word.clear();
            }
            '$' => {
                // Grafana variables: $__rate_interval, ${datasource}.
                i += 1;
                if i < chars.len() && chars[i] == '{' {
                    while i < chars.len() && chars[i] != '}' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                // A number, with an exponent (1e6) or a duration unit.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                if call_label_values {
                    // label_values(metric, label): the label is no series.
                    names.push(word.clone());
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                    call_label_values = false;
                } else if word == "label_values" {
                    call_label_values = true;
                } else if !PROMQL_WORDS.contains(&word.as_str()) {
                    names.push(word.clone());
                }
                last_word = word;
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                last_word.clear();
                i += 1;
            }
        }
    }
    names
}

/// Every expression in the alert rules, with the alert's name.
fn alert_exprs() -> Vec<(String, String)> {
    let docs = YamlLoader::load_from_str(&repo_file("deploy/prometheus/alerts.yml")).unwrap();
    assert_eq!(docs.len(), 1, "alerts.yml is one YAML document");
    let groups = docs[0]["groups"].as_vec().expect("a `groups` list");
    assert!(!groups.is_empty());
    let mut out = Vec::new();
    for g in groups {
        let group = g["name"].as_str().expect("every group has a name");
        let rules = g["rules"].as_vec().expect("every group has `rules`");
        for r in rules {
            let name = r["alert"]
                .as_str()
                .unwrap_or_else(|| panic!("a rule of {group} has no `alert` name"))
                .to_owned();
            let expr = r["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no `expr`"))
                .to_owned();
            let severity = r["labels"]["severity"].as_str();
            assert!(
                matches!(severity, Some("page" | "warning")),
                "{name}: severity must be page or warning, not {severity:?}"
            );
            for a in ["summary", "description", "runbook"] {
                assert!(
                    r["annotations"][a]
                        .as_str()
                        .is_some_and(|s| !s.trim().is_empty()),
                    "{name}: no `{a}` annotation"
                );
            }
            if let Yaml::String(f) = &r["for"] {
                assert!(
                    f.trim_end_matches(char::is_alphabetic)
                        .parse::<u32>()
                        .is_ok(),
                    "{name}: bad `for` {f:?}"
                );
            }
            out.push((name, expr));
        }
    }
    out
}

/// Every PromQL query in the dashboard: panel targets (rows included) and
/// query variables.
fn dashboard_exprs() -> Vec<(String, String)> {
    let d: Value = serde_json::from_str(&repo_file("deploy/grafana/evident.json")).unwrap();
    assert!(d["title"].is_string() && d["uid"].is_string());
    let mut out = Vec::new();
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{title}: a target has no expr"));
                out.push((title.clone(), expr.to_owned()));
            }
            panels(&p["panels"], out);
        }
    }
    panels(&d["panels"], &mut out);
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"].as_str().or_else(|| v["query"].as_str());
            out.push((
                format!("${}", v["name"].as_str().unwrap_or("?")),
                q.unwrap().to_owned(),
            ));
        }
    }
    out
}

fn assert_known(file: &str, exprs: &[(String, String)], exported: &BTreeSet<String>) {
    let mut unknown = Vec::new();
    for (what, expr) in exprs {
        let names = series_names(expr);
        assert!(
            !names.is_empty(),
            "{file}: {what}: `{expr}` names no metric"
        );
        for n in names {
            if !exported.contains(&n) {
                unknown.push(format!("{what}: {n}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "{file} refers to metrics the server does not export:\n  {}\nexported: {exported:#?}",
        unknown.join("\n  ")
    );
}

/// Metric families in every expression, for coverage checks.
fn referenced(exprs: &[(String, String)]) -> BTreeSet<String> {
    exprs.iter().flat_map(|(_, e)| series_names(e)).collect()
}

#[test]
fn the_scanner_finds_series_names_only() {
    let e = r#"sum by (route, status) (rate(evident_http_requests_total{status=~"5..", route="x"}[5m])) / on() vector(0) > 1e3 and absent(evident_db_up) or x:y_z offset 5m"#;
    assert_eq!(
        series_names(e),
        ["evident_http_requests_total", "evident_db_up", "x:y_z"]
    );
    assert_eq!(
        series_names("label_values(evident_db_up, instance)"),
        ["evident_db_up"]
    );
    assert_eq!(
        series_names(
            "histogram_quantile(0.99, sum by (le) (rate(a_bucket{i=~\"$instance\"}[$__rate_interval])))"
        ),
        ["a_bucket"]
    );
}

#[test]
fn alerts_refer_only_to_exported_metrics() {
    let exported = exported();
    let exprs = alert_exprs();
    assert_known("alerts.yml", &exprs, &exported);
    let used = referenced(&exprs);
    for must in [
        "evident_chain_breaks_total",
        "evident_signature_failures_total",
        "evident_db_up",
        "evident_checkpoint_age_seconds",
        "evident_verification_lag_entries",
        "evident_verification_runs_total",
        "evident_http_requests_total",
        "evident_auth_failures_total",
        "evident_rate_limited_requests_total",
    ] {
        assert!(used.contains(must), "no alert uses {must}");
    }
}

#[test]
fn dashboard_refers_only_to_exported_metrics() {
    let exported = exported();
    let exprs = dashboard_exprs();
    assert_known("evident.json", &exprs, &exported);
    let used = referenced(&exprs);
    for must in [
        "evident_appended_entries_total",
        "evident_batch_size_entries_bucket",
        "evident_append_duration_seconds_bucket",
        "evident_receipt_duration_seconds_bucket",
        "evident_checkpoint_age_seconds",
        "evident_db_up",
        "evident_chain_breaks_total",
        "evident_signature_failures_total",
        "evident_verification_runs_total",
        "evident_verification_lag_entries",
        "evident_auth_failures_total",
        "evident_rate_limited_requests_total",
        "evident_http_requests_total",
    ] {
        assert!(used.contains(must), "no dashboard panel shows {must}");
    }
}

#[test]
fn a_renamed_metric_is_caught() {
    let exported = exported();
    let renamed = vec![(
        "test".to_owned(),
        "increase(evident_chain_breaks_found_total[5m]) > 0".to_owned(),
    )];
    let caught = std::panic::catch_unwind(|| assert_known("test", &renamed, &exported));
    assert!(caught.is_err());
}

#[test]
fn promtool_loads_the_rules_and_passes_their_tests_when_installed() {
    if Command::new("promtool").arg("--version").output().is_err() {
        // scripts/test installs it and sets this: there, a missing promtool
        // is a failure, not a skip.
        assert!(
            std::env::var_os("EVIDENT_REQUIRE_INTEROP").is_none(),
            "promtool is not installed (Debian package `prometheus`), and EVIDENT_REQUIRE_INTEROP is set"
        );
        eprintln!("promtool is not installed: rules not loaded by Prometheus' own parser");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
