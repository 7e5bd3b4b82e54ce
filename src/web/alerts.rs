//! Alerts: the list with filters, one alert with its evidence and notes, status changes,
//! blocking an address by hand, and the blocklist with its allow-list.

use std::collections::HashMap;
use std::fmt::Write;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};

use super::{
    Nav, Page, SEVERITIES, blocking, error_page, form_encode, param, render_with, require_session,
    require_triage, when,
};
use crate::alerting::triage::{self, ManualAlert, TriageError};
use crate::event::Event;
use crate::state::AppState;
use crate::storage::{AlertNote, AlertQuery, AlertRecord, AlertStatus};

/// Alerts per page of the list.
const PAGE_SIZE: usize = 50;
/// Campaign members shown on an alert's page.
const MEMBERS_SHOWN: usize = 500;

const STATUSES: [AlertStatus; 4] = [
    AlertStatus::Open,
    AlertStatus::Acknowledged,
    AlertStatus::Resolved,
    AlertStatus::FalsePositive,
];

/// An alert as a row of a table (the list, the overview, the IP and user pages).
pub(super) struct AlertRow {
    pub id: u64,
    pub title: String,
    pub severity: String,
    pub status: &'static str,
    pub entity_type: String,
    pub entity: String,
    /// Where the entity's page is, if it has one.
    pub entity_link: Option<String>,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub rule: String,
}

/// The page of an alert's entity: an address or an account.
pub(super) fn entity_link(entity_type: &str, entity: &str) -> Option<String> {
    match entity_type {
        "ip" => Some(format!("/ip/{}", form_encode(entity))),
        "user" => Some(format!("/user/{}", form_encode(entity))),
        _ => None,
    }
}

impl From<AlertRecord> for AlertRow {
    fn from(a: AlertRecord) -> Self {
        Self {
            id: a.id,
            entity_link: entity_link(&a.entity_type, &a.entity),
            title: a.title,
            severity: a.severity,
            status: a.status.as_str(),
            entity_type: a.entity_type,
            entity: a.entity,
            count: a.count,
            first_seen: when(a.first_seen),
            last_seen: when(a.last_seen),
            rule: a.rule,
        }
    }
}

#[derive(Template)]
#[template(path = "alerts/list.html")]
struct ListPage {
    nav: Option<Nav>,
    alerts: Vec<AlertRow>,
    statuses: Vec<&'static str>,
    severities: [&'static str; 4],
    status: String,
    severity: String,
    rule: String,
    entity: String,
    next: Option<String>,
    error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Page {
    let session = require_session(&state, &headers)?;
    let (status, severity, rule, entity) = (
        param(&params, "status"),
        param(&params, "severity"),
        param(&params, "rule"),
        param(&params, "entity"),
    );
    let mut query = AlertQuery {
        limit: PAGE_SIZE,
        before_id: params.get("before").and_then(|v| v.parse().ok()),
        ..AlertQuery::default()
    };
    let mut error = None;
    if !status.is_empty() {
        query.status = AlertStatus::parse(&status);
        if query.status.is_none() {
            error = Some(format!("Unknown status `{status}`."));
        }
    }
    if !severity.is_empty() {
        if !SEVERITIES.contains(&severity.as_str()) {
            error = Some(format!("Unknown severity `{severity}`."));
        }
        query.severity = Some(severity.clone());
    }
    if !rule.is_empty() {
        query.rule = Some(rule.clone());
    }
    if !entity.is_empty() {
        query.entity = Some(entity.clone());
    }
    let store = state.store.clone();
    let alerts = if error.is_none() {
        blocking(move || store.alerts(&query)).await?
    } else {
        Vec::new()
    };
    let next = (alerts.len() == PAGE_SIZE)
        .then(|| alerts.last().map(|a| a.id))
        .flatten()
        .map(|before| {
            let mut link = format!("/alerts?before={before}");
            for (name, value) in [
                ("status", &status),
                ("severity", &severity),
                ("rule", &rule),
                ("entity", &entity),
            ] {
                if !value.is_empty() {
                    let _ = write!(link, "&{name}={}", form_encode(value));
                }
            }
            link
        });
    let status_code = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render_with(
        status_code,
        &ListPage {
            nav: Some(session.nav(&state, "alerts")),
            alerts: alerts.into_iter().map(AlertRow::from).collect(),
            statuses: STATUSES.iter().map(|s| s.as_str()).collect(),
            severities: SEVERITIES,
            status,
            severity,
            rule,
            entity,
            next,
            error,
        },
    ))
}

/// An evidence line.
pub(super) struct EvidenceRow {
    pub time: String,
    pub host: String,
    pub line: String,
    pub outcome: &'static str,
}

impl From<Event> for EvidenceRow {
    fn from(e: Event) -> Self {
        let line = e.raw.clone().unwrap_or_else(|| {
            format!(
                "{} user={} ip={}{}",
                e.event_type,
                e.username.as_deref().unwrap_or("-"),
                e.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                e.message
                    .as_deref()
                    .map(|m| format!(" {m}"))
                    .unwrap_or_default()
            )
        });
        Self {
            time: when(e.timestamp),
            host: e.host.unwrap_or_default(),
            line,
            outcome: match e.success {
                Some(true) => "success",
                Some(false) => "failure",
                None => "",
            },
        }
    }
}

struct NoteRow {
    at: String,
    by: String,
    status: &'static str,
    text: String,
}

impl From<AlertNote> for NoteRow {
    fn from(n: AlertNote) -> Self {
        Self {
            at: when(n.at),
            by: n.by,
            status: n.status.as_str(),
            text: n.text,
        }
    }
}

#[derive(Template)]
#[template(path = "alerts/detail.html")]
struct DetailPage {
    nav: Option<Nav>,
    alert: AlertRow,
    attack: Vec<String>,
    peak: u64,
    evidence: Vec<EvidenceRow>,
    notes: Vec<NoteRow>,
    members: Vec<String>,
    member_count: usize,
    statuses: Vec<&'static str>,
    /// The alert's address, when it has one: it can be blocked or allow-listed.
    address: Option<String>,
    /// Whether the address is blocked by hand already (an active manual-block alert).
    blocked_by_hand: bool,
    error: Option<String>,
}

pub async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Page {
    let session = require_session(&state, &headers)?;
    detail_view(&state, &session, &id, None, StatusCode::OK).await
}

async fn detail_view(
    state: &AppState,
    session: &super::Session,
    id: &str,
    error: Option<String>,
    status: StatusCode,
) -> Page {
    let missing = || {
        error_page(
            StatusCode::NOT_FOUND,
            "No such alert",
            "There is no alert with this number.",
            Some(session.nav(state, "alerts")),
        )
    };
    let id: u64 = id.parse().map_err(|_| missing())?;
    let store = state.store.clone();
    let found = blocking(move || {
        let Some(alert) = store.alert(id)? else {
            return Ok(None);
        };
        let mut evidence = Vec::new();
        for event_id in alert.evidence.iter().rev() {
            if let Some(event) = store.get_event(event_id)? {
                evidence.push(EvidenceRow::from(event));
            }
        }
        let members = if alert.entity_type == "campaign" {
            store.alert_members(id, MEMBERS_SHOWN)?
        } else {
            (Vec::new(), 0)
        };
        let blocked_by_hand = alert.entity_type == "ip"
            && store
                .active_alert_id(triage::MANUAL_BLOCK_RULE, "ip", &alert.entity)?
                .is_some();
        Ok::<_, crate::storage::StorageError>(Some((alert, evidence, members, blocked_by_hand)))
    })
    .await?;
    let (alert, evidence, (members, member_count), blocked_by_hand) = found.ok_or_else(missing)?;
    let address = (alert.entity_type == "ip").then(|| alert.entity.clone());
    let attack = alert.attack.clone();
    let peak = alert.peak;
    let notes = alert
        .notes
        .iter()
        .rev()
        .cloned()
        .map(NoteRow::from)
        .collect();
    Ok(render_with(
        status,
        &DetailPage {
            nav: Some(session.nav(state, "alerts")),
            alert: AlertRow::from(alert),
            attack,
            peak,
            evidence,
            notes,
            members,
            member_count,
            statuses: STATUSES.iter().map(|s| s.as_str()).collect(),
            address,
            blocked_by_hand,
            error,
        },
    ))
}

pub async fn set_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let session = require_triage(&state, &headers, &form)?;
    let status_text = param(&form, "status");
    let Some(status) = AlertStatus::parse(&status_text) else {
        let error = Some(format!("Unknown status `{status_text}`."));
        return detail_view(&state, &session, &id, error, StatusCode::BAD_REQUEST).await;
    };
    let note = form.get("note").map_or("", |n| n.trim()).to_string();
    let Ok(number) = id.parse::<u64>() else {
        return detail_view(&state, &session, &id, None, StatusCode::NOT_FOUND).await;
    };
    let store = state.store.clone();
    let by = session.label();
    let updated = blocking(move || {
        refusal(triage::set_status(
            &store,
            number,
            status,
            note,
            by,
            crate::now_micros(),
        ))
    })
    .await?;
    match updated {
        Ok(Some(_)) => {}
        Ok(None) => {
            return detail_view(&state, &session, &id, None, StatusCode::NOT_FOUND).await;
        }
        Err(refused) => {
            return detail_view(
                &state,
                &session,
                &id,
                Some(refused.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    }
    Ok(Redirect::to(&format!("/alerts/{number}")).into_response())
}

/// Blocks the alert's address by hand: a `manual-block` alert on it, which keeps it on the
/// blocklist while it is active.
pub async fn block(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let session = require_triage(&state, &headers, &form)?;
    let Ok(number) = id.parse::<u64>() else {
        return detail_view(&state, &session, &id, None, StatusCode::NOT_FOUND).await;
    };
    let store = state.store.clone();
    let by = session.label();
    let note = form.get("note").map_or("", |n| n.trim()).to_string();
    let raised = blocking(move || {
        let Some(alert) = store.alert(number)? else {
            return Ok(Err(TriageError::Invalid("There is no such alert.".into())));
        };
        if alert.entity_type != "ip" {
            return Ok(Err(TriageError::Invalid(
                "Only an alert on an address can block it.".into(),
            )));
        }
        let manual = ManualAlert {
            title: format!("Blocked by hand (alert {number}: {})", alert.title),
            severity: alert.severity.clone(),
            entity_type: "ip".into(),
            entity: alert.entity.clone(),
            note: if note.is_empty() {
                format!("blocked from alert {number}")
            } else {
                note
            },
            evidence: alert.evidence.iter().rev().take(10).cloned().collect(),
            block: true,
            attack: alert.attack.clone(),
        };
        refusal(triage::raise(&store, manual, by, crate::now_micros()))
    })
    .await?;
    match raised {
        Ok(alert) => {
            tracing::info!(alert = alert.id, ip = %alert.entity, by = %session.label(), "address blocked by hand");
            Ok(Redirect::to(&format!("/alerts/{}", alert.id)).into_response())
        }
        Err(e) => {
            detail_view(
                &state,
                &session,
                &id,
                Some(e.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

/// A refused request apart from a failure of the store: the refusal is shown on the page, the
/// failure is the error page.
fn refusal<T>(
    result: Result<T, TriageError>,
) -> Result<Result<T, TriageError>, crate::storage::StorageError> {
    match result {
        Err(TriageError::Storage(e)) => Err(e),
        other => Ok(other),
    }
}

struct BlockRow {
    ip: String,
    alert_id: u64,
    reason: String,
    expires_at: String,
}

struct AllowRow {
    network: String,
    note: String,
    by: String,
    at: Option<String>,
    /// Added from the dashboard or the API (the configuration's cannot be removed here).
    removable: bool,
}

#[derive(Template)]
#[template(path = "alerts/blocklist.html")]
struct BlocklistPage {
    nav: Option<Nav>,
    blocked: Vec<BlockRow>,
    spared: Vec<BlockRow>,
    allowed: Vec<AllowRow>,
    network: String,
    error: Option<String>,
}

pub async fn blocklist(State(state): State<AppState>, headers: HeaderMap) -> Page {
    let session = require_session(&state, &headers)?;
    blocklist_view(&state, &session, String::new(), None, StatusCode::OK).await
}

async fn blocklist_view(
    state: &AppState,
    session: &super::Session,
    network: String,
    error: Option<String>,
    status: StatusCode,
) -> Page {
    let store = state.store.clone();
    let settings = state.settings.clone();
    let list = blocking(move || triage::blocklist(&store, &settings, crate::now_micros())).await?;
    let row = |e: crate::storage::BlockEntry| BlockRow {
        ip: e.ip,
        alert_id: e.alert_id,
        reason: e.reason,
        expires_at: when(e.expires_at),
    };
    let configured = state.settings.blocklist_allow.iter().map(|n| AllowRow {
        network: n.to_string(),
        note: "from the configuration (blocklist_allow)".into(),
        by: "config".into(),
        at: None,
        removable: false,
    });
    let added = list.allowlist.into_iter().map(|e| AllowRow {
        network: e.network,
        note: e.note,
        by: e.by,
        at: Some(when(e.at)),
        removable: true,
    });
    Ok(render_with(
        status,
        &BlocklistPage {
            nav: Some(session.nav(state, "blocklist")),
            blocked: list.blocked.into_iter().map(row).collect(),
            spared: list.spared.into_iter().map(row).collect(),
            allowed: configured.chain(added).collect(),
            network,
            error,
        },
    ))
}

pub async fn allow(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let session = require_triage(&state, &headers, &form)?;
    let network = param(&form, "network");
    let note = param(&form, "note");
    let store = state.store.clone();
    let by = session.label();
    let text = network.clone();
    let added =
        blocking(move || refusal(triage::allow(&store, &text, &note, by, crate::now_micros())))
            .await?;
    match added {
        Ok(entry) => {
            tracing::info!(network = %entry.network, by = %session.label(), "network allow-listed");
            Ok(Redirect::to("/blocklist").into_response())
        }
        Err(e) => {
            blocklist_view(
                &state,
                &session,
                network,
                Some(e.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

pub async fn disallow(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let session = require_triage(&state, &headers, &form)?;
    let network = param(&form, "network");
    let store = state.store.clone();
    let key = network.clone();
    let removed = blocking(move || store.disallow(&key)).await?;
    if removed {
        tracing::info!(network = %network, by = %session.label(), "network removed from the allow-list");
        Ok(Redirect::to("/blocklist").into_response())
    } else {
        let error = Some(format!("{network} is not on the allow-list."));
        blocklist_view(
            &state,
            &session,
            String::new(),
            error,
            StatusCode::NOT_FOUND,
        )
        .await
    }
}
