//! `securify explain`: what the appliance makes of each line of an auth log, line by line.
//!
//! Runs the same framing, message rules and template miner as raw-log ingest, with a fresh
//! miner and nothing stored, and prints one JSON object per line (`--json`) or a readable
//! summary per line.

use std::io::{BufRead, Write};

use serde_json::{Map, Value, json};

use crate::ingest::parse::connections::{self, Connections};
use crate::ingest::parse::{self, LineClock, Outcome, miner::Miner};

/// How many lines were read and how many a rule understood.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    pub understood: u64,
    pub templates: usize,
}

/// Explains every line of `input` to `output`.
pub fn explain(
    input: impl BufRead,
    mut output: impl Write,
    json: bool,
    mut clock: LineClock,
) -> std::io::Result<Summary> {
    let mut miner = Miner::default();
    let mut connections = Connections::default();
    let mut summary = Summary::default();
    for line in input.split(b'\n') {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\r', '\n']);
        summary.lines += 1;
        let explained = explain_line(
            &mut miner,
            &mut connections,
            &mut clock,
            line,
            summary.lines,
        );
        if explained.get("event_type").is_some_and(|v| !v.is_null()) {
            summary.understood += 1;
        }
        if json {
            serde_json::to_writer(&mut output, &explained)?;
            output.write_all(b"\n")?;
        } else {
            writeln!(output, "{}", human(&explained))?;
        }
    }
    summary.templates = miner.templates().len();
    Ok(summary)
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Neutral => "neutral",
    }
}

/// One line as a JSON object: framing, what the rules made of it, and its template.
fn explain_line(
    miner: &mut Miner,
    connections: &mut Connections,
    clock: &mut LineClock,
    line: &str,
    number: u64,
) -> Value {
    let mut parsed = parse::parse_line(line);
    let framed = &parsed.framed;
    let placed = miner.add(framed.message);
    let template = miner
        .template(placed.template_id)
        .map(parse::miner::Template::text);
    let at = framed.time.and_then(|t| clock.resolve(t));
    if let (Some(record), Some(key)) = (parsed.record.as_mut(), connections::key_of(framed, None)) {
        connections.follow(key, at.unwrap_or(0), record);
    }
    let time = at.map(crate::event::format_timestamp);
    let mut object = Map::new();
    object.insert("line".into(), json!(number));
    object.insert("time".into(), json!(time));
    object.insert("host".into(), json!(framed.host));
    object.insert("program".into(), json!(framed.program));
    object.insert("pid".into(), json!(framed.pid));
    let record = parsed.record.as_ref();
    object.insert("parser".into(), json!(record.map(|r| r.parser)));
    object.insert("event_type".into(), json!(record.map(|r| r.kind.as_str())));
    object.insert(
        "outcome".into(),
        json!(record.map(|r| outcome_name(r.outcome))),
    );
    let mut fields = Map::new();
    if let Some(r) = record {
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                fields.insert(key.into(), value);
            }
        };
        put("user", json!(r.user));
        put("source_ip", json!(r.source_ip.map(|ip| ip.to_string())));
        put("port", json!(r.port));
        put("method", json!(r.method));
        put("target", json!(r.target));
        put("command", json!(r.command));
        put("remote_host", json!(r.remote_host));
        if r.invalid_user {
            put("invalid_user", json!(true));
        }
        if r.count != 1 {
            put("count", json!(r.count));
        }
    }
    object.insert("fields".into(), Value::Object(fields));
    object.insert("template_id".into(), json!(placed.template_id));
    object.insert("template".into(), json!(template));
    let variables: Vec<Value> = placed
        .variables
        .iter()
        .map(|v| json!({"kind": v.kind, "value": v.value}))
        .collect();
    object.insert("variables".into(), Value::Array(variables));
    object.insert("message".into(), json!(framed.message));
    Value::Object(object)
}

/// `12  LOGIN_FAILED (sshd)  user=root source_ip=1.2.3.4  T5: Failed password for <user> …`
fn human(explained: &Value) -> String {
    let text = |key: &str| explained.get(key).and_then(Value::as_str);
    let kind = match (text("event_type"), text("parser")) {
        (Some(kind), Some(parser)) => format!("{kind} ({parser})"),
        _ => "-".to_string(),
    };
    let fields: Vec<String> = explained
        .get("fields")
        .and_then(Value::as_object)
        .map(|fields| {
            fields
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{:>6}  {kind:<32} {:<40}  T{}: {}",
        explained.get("line").and_then(Value::as_u64).unwrap_or(0),
        fields.join(" "),
        explained
            .get("template_id")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        text("template").unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_json_object_per_line_with_the_required_fields() {
        let input = "Dec 10 07:07:38 LabSZ sshd[24206]: Failed password for root from 52.80.34.196 port 36060 ssh2\n\
                     not a syslog line at all\n\
                     Dec 10 07:07:40 LabSZ sshd[24208]: Failed password for admin from 52.80.34.197 port 36061 ssh2\n";
        let mut out = Vec::new();
        let summary = explain(
            input.as_bytes(),
            &mut out,
            true,
            LineClock::new(2025, time::UtcOffset::UTC),
        )
        .unwrap();
        assert_eq!(
            summary,
            Summary {
                lines: 3,
                understood: 2,
                templates: 2
            }
        );
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        let first = &lines[0];
        assert_eq!(first["parser"], "sshd");
        assert_eq!(first["event_type"], "LOGIN_FAILED");
        assert_eq!(first["time"], "2025-12-10T07:07:38Z");
        assert_eq!(first["fields"]["source_ip"], "52.80.34.196");
        assert_eq!(first["fields"]["user"], "root");
        assert_eq!(
            first["template"],
            "Failed password for <user> from <ip> port <num> ssh2"
        );
        assert_eq!(first["template_id"], lines[2]["template_id"]);
        assert_eq!(lines[1]["parser"], Value::Null);
        assert_eq!(lines[1]["event_type"], Value::Null);
        assert_eq!(lines[1]["template"], "not a syslog line at all");
    }

    #[test]
    fn lines_are_read_with_their_connection() {
        let input = "Feb 12 04:09:18 h sshd[26713]: Connection from 115.249.163.77 port 51353 on 10.0.0.1 port 22\n\
                     Feb 12 04:09:21 h sshd[26713]: Disconnecting: Too many authentication failures for root [preauth]\n";
        let mut out = Vec::new();
        explain(
            input.as_bytes(),
            &mut out,
            true,
            LineClock::new(2025, time::UtcOffset::UTC),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["event_type"], "MAX_AUTH_ATTEMPTS");
        assert_eq!(last["fields"]["source_ip"], "115.249.163.77");
        assert_eq!(last["fields"]["port"], 51353);
    }

    #[test]
    fn readable_output_names_the_event_and_template() {
        let mut out = Vec::new();
        explain(
            "Mar  2 00:00:03 srv01 sshd[1]: Invalid user pi from 135.6.3.179 port 36287\n"
                .as_bytes(),
            &mut out,
            false,
            LineClock::new(2026, time::UtcOffset::UTC),
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("INVALID_USER (sshd)"), "{text}");
        assert!(text.contains("user=pi"), "{text}");
        assert!(
            text.contains("Invalid user <user> from <ip> port <num>"),
            "{text}"
        );
    }
}
