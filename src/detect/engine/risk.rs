//! The risk of one event: what it completed, whether its address is under a blocking alert or
//! in a campaign, and how close it is to a per-address threshold.

use super::{Detector, Facts, Field, Finding, LATENESS_MICROS, RuleKind, Severity};
use crate::event::Event;

/// How risky one event looks, from what the detector knows now.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Risk {
    /// 0 (nothing known against it) to 1.
    pub risk_score: f64,
    /// `allow`, `challenge` or `block`.
    pub verdict: &'static str,
    pub reasons: Vec<String>,
}

/// Scores at or above which a login is challenged or blocked.
const CHALLENGE_AT: f64 = 0.5;
const BLOCK_AT: f64 = 0.8;

fn severity_score(severity: Severity) -> f64 {
    match severity {
        Severity::Low => 0.3,
        Severity::Medium => 0.6,
        Severity::High => 0.85,
        Severity::Critical => 1.0,
    }
}

impl Detector {
    /// The risk of `event` (already observed, its findings given): what it completed, whether
    /// its address is under a blocking alert or in a campaign, and how close it is to a
    /// threshold.
    #[must_use]
    pub fn risk(&self, event: &Event, findings: &[Finding]) -> Risk {
        let mut score: f64 = 0.0;
        let mut reasons = Vec::new();
        for found in findings {
            score = score.max(severity_score(found.severity));
            reasons.push(found.title.clone());
        }
        let facts = Facts::of(event);
        if let Some(ip) = facts.ip.as_deref() {
            let recent = self.watermark.saturating_sub(LATENESS_MICROS);
            for (rule, state) in self.rules.iter().zip(&self.state) {
                let reported = state.reported.get(ip).is_some_and(|(at, _)| *at >= recent);
                let member = state.all_members.contains_key(ip);
                if rule.block && rule.key == Field::SourceIp && reported
                    || matches!(rule.kind, RuleKind::Campaign | RuleKind::Stuffing) && member
                {
                    let reason = format!("address under alert: {}", rule.title);
                    if !reasons.contains(&reason) && !findings.iter().any(|f| f.rule == rule.id) {
                        reasons.push(reason);
                    }
                    score = score.max(0.9);
                }
                // Nearing a per-address threshold: up to half the way to a block.
                if rule.kind == RuleKind::Threshold
                    && rule.key == Field::SourceIp
                    && rule.matches(&facts)
                    && let Some(window) = state.windows.get(ip)
                {
                    let count = window.busiest_around(event.timestamp).count;
                    if count > 1 && count < rule.threshold {
                        score = score.max(0.5 * count as f64 / rule.threshold as f64);
                        reasons.push(format!(
                            "{count} of {} attempts toward: {}",
                            rule.threshold, rule.title
                        ));
                    }
                }
            }
        }
        let verdict = if score >= BLOCK_AT {
            "block"
        } else if score >= CHALLENGE_AT {
            "challenge"
        } else {
            "allow"
        };
        Risk {
            risk_score: (score * 100.0).round() / 100.0,
            verdict,
            reasons,
        }
    }
}
