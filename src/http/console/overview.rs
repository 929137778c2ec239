//! `/admin` (counts and the latest events) and `/admin/events` (the audit trail).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{admit, admitted, refusal};
use crate::error::AppError;
use crate::http::pages::render;
use crate::services::events::{self, EventQuery};
use crate::services::{clients, grants, users};
use crate::state::AppState;
use crate::views::console::{Choice, Draft, EventRow, EventsPage, OverviewPage};

const RECENT_EVENTS: i64 = 10;

pub async fn show(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let scope_count = state.registry.snapshot().tree.len() as i64;
    let (client_count, user_count, grant_count, recent) = state
        .db
        .run(move |connection| {
            let recent = events::list(connection, EventQuery { limit: Some(RECENT_EVENTS), ..EventQuery::default() })?;
            let counts = (clients::count(connection)?, users::count(connection)?, grants::count(connection)?);
            Ok::<_, AppError>((counts.0, counts.1, counts.2, recent.events))
        })
        .await?;
    let page = OverviewPage {
        frame: console.frame("overview", None, None),
        page_title: "Administration".into(),
        counts: vec![
            ("Scopes", scope_count, "/admin/scopes"),
            ("Clients", client_count, "/admin/clients"),
            ("Users", user_count, "/admin/users"),
            // All grants, not the active ones: which are active is the entitlement rule's verdict
            // per grant, too slow to count over a bank's million (the grants page judges them).
            ("Grants", grant_count, "/admin/grants"),
        ],
        events: recent.into_iter().map(EventRow::from).collect(),
    };
    Ok(render(StatusCode::OK, &page))
}

/// `GET /admin/v1/events` as a page: the same query, from the page's filter form.
pub async fn events(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let filter = Draft::from_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let event_query = event_query(&filter);
    let (status, error, listed) = match state.db.run(move |connection| events::list(connection, event_query)).await {
        Ok(page) => (StatusCode::OK, None, page),
        Err(error) => {
            let (status, message) = refusal(error)?;
            (status, Some(message), events::EventPage { events: Vec::new(), next_cursor: None })
        }
    };
    let page = EventsPage {
        frame: console.frame("events", None, error),
        page_title: "Audit events".into(),
        kinds: Choice::event_types(filter.value("type")),
        older: listed.next_cursor.map(|cursor| older_link(&filter, &cursor)),
        filter,
        events: listed.events.into_iter().map(EventRow::from).collect(),
    };
    Ok(render(status, &page))
}

/// The API's query from the filter form: an empty field is no filter; a limit that is not a
/// number is out of range, so the service refuses it with its own message.
fn event_query(filter: &Draft) -> EventQuery {
    let wanted = |key: &str| Some(filter.value(key).to_string()).filter(|value| !value.is_empty());
    EventQuery {
        kind: wanted("type"),
        username: wanted("username"),
        client_id: wanted("client_id"),
        scope: wanted("scope"),
        since: None,
        limit: wanted("limit").map(|limit| limit.parse::<i64>().unwrap_or(0)),
        cursor: wanted("cursor"),
    }
}

/// The next page: the same filters, before the cursor.
fn older_link(filter: &Draft, cursor: &str) -> String {
    let mut older = url::form_urlencoded::Serializer::new(String::new());
    for key in ["type", "username", "client_id", "scope", "limit"] {
        if !filter.value(key).is_empty() {
            older.append_pair(key, filter.value(key));
        }
    }
    older.append_pair("cursor", cursor);
    format!("/admin/events?{}", older.finish())
}
