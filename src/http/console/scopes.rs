//! `/admin/scopes`: the tree, search, create, edit, move and delete, through the registry
//! service that `/admin/v1/scopes` uses.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{admit, admit_form, admitted, done, notice_text, refusal, segment, Console};
use crate::domain::scope::{GrantType, ScopeFields};
use crate::domain::scope_tree::{ScopePatch, ScopeQuery};
use crate::error::AppError;
use crate::http::admin::scopes::NewScope;
use crate::http::form::HtmlForm;
use crate::http::pages::render;
use crate::services::registry::subtree_holders;
use crate::state::AppState;
use crate::views::console::{
    parent_choices, pre_order, ConfirmPage, Draft, ScopeInUsePage, ScopePage, ScopesPage, TreeRow,
};

type Query = web::Query<Vec<(String, String)>>;

pub async fn list(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: Query,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let search = Draft::from_pairs(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let notice = notice_text(Some(search.value("notice")));
    Ok(tree_page(&console, &state, search, Draft::default(), notice, None))
}

/// The tree page, or the matches of a search; with a refused create's message and values.
fn tree_page(
    console: &Console,
    state: &AppState,
    search: Draft,
    draft: Draft,
    notice: Option<String>,
    refused: Option<(StatusCode, String)>,
) -> HttpResponse {
    let snapshot = state.registry.snapshot();
    let tree = &snapshot.tree;
    let error = refused.as_ref().map(|(_, message)| message.clone());
    let query = ScopeQuery {
        keyword: Some(search.value("q").to_string()).filter(|q| !q.is_empty()),
        security_level: search.value("security_level").parse().ok(),
        auth_type: search.value("auth_type").parse().ok(),
    };
    let searching = query != ScopeQuery::default();
    let rows = if searching {
        TreeRow::nest(tree.search(&query).into_iter().map(|scope| (scope, 0)).collect())
    } else {
        TreeRow::nest(pre_order(tree))
    };
    let parent = Some(draft.value("parent")).filter(|p| !p.is_empty());
    let page = ScopesPage {
        frame: console.frame("scopes", notice, error),
        page_title: "Scopes".into(),
        searching,
        search,
        rows,
        parents: parent_choices(tree, parent, None),
        draft,
    };
    render(refused.map_or(StatusCode::OK, |(status, _)| status), &page)
}

/// A scope's fields from a console form: the same fields and bounds as the JSON API, since
/// the form's values are handed to the same deserializer.
fn fields_from(form: &HtmlForm) -> Result<ScopeFields, AppError> {
    let text = |key: &str| form.first(key).map(str::trim).filter(|value| !value.is_empty()).map(str::to_string);
    let number = |key: &str| -> Result<u32, AppError> {
        match text(key) {
            None => Ok(0),
            Some(value) => value
                .parse()
                .map_err(|_| AppError::invalid_request(format!("{key}: {value:?} is not a whole number from 0"))),
        }
    };
    let auth_types = form
        .all("auth_types")
        .map(|value| value.parse::<GrantType>().map_err(|e| AppError::invalid_request(format!("auth_types: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let operations =
        form.first("operations").unwrap_or("").lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from);
    let document = serde_json::json!({
        "alias": text("alias"),
        "short_description": text("short_description").unwrap_or_default(),
        "description": text("description"),
        "visibility": text("visibility").unwrap_or_else(|| "public".into()),
        "default_scope": form.first("default_scope").is_some(),
        "user_authorization_required": form.first("user_authorization_required").is_some(),
        "access_duration_days": number("access_duration_days")?,
        "max_access_count": number("max_access_count")?,
        "max_accesses_per_day": number("max_accesses_per_day")?,
        "security_level": text("security_level").unwrap_or_else(|| "F".into()),
        "auth_types": auth_types,
        "operations": operations.collect::<Vec<_>>(),
        "bank_level": form.first("bank_level").is_some(),
        "parameterised": form.first("parameterised").is_some(),
    });
    ScopeFields::deserialize_flattened(document).map_err(|error| AppError::invalid_request(error.to_string()))
}

pub async fn create(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (registry, actor, now) = (state.registry.clone(), console.actor(), state.clock.now());
    let created = match new_scope_from(&form) {
        Ok(new_scope) => {
            let (scope, position) = new_scope.into_scope();
            state.db.run(move |connection| registry.create(connection, scope, position, &actor, now)).await
        }
        Err(error) => Err(error),
    };
    match created {
        Ok(()) => Ok(done("/admin/scopes", "scope-created")),
        Err(error) => {
            let draft = Draft::from_pairs(form_pairs(&form));
            Ok(tree_page(&console, &state, Draft::default(), draft, None, Some(refusal(error)?)))
        }
    }
}

/// The scope the create form describes, at the end of its parent's children.
fn new_scope_from(form: &HtmlForm) -> Result<NewScope, AppError> {
    let name = form.first("name").unwrap_or("").trim().to_string();
    let parent = form.first("parent").filter(|parent| !parent.is_empty()).map(str::to_string);
    Ok(NewScope { name, parent, position: None, fields: fields_from(form)? })
}

fn form_pairs(form: &HtmlForm) -> impl Iterator<Item = (&str, &str)> {
    form.pairs()
}

pub async fn show(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    name: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let notice = query.iter().find(|(key, _)| key == "notice").and_then(|(_, value)| notice_text(Some(value)));
    Ok(scope_page(&console, &state, &name, None, notice, None))
}

/// One scope's page: the edit form (the name read-only), the move form, the delete link.
fn scope_page(
    console: &Console,
    state: &AppState,
    name: &str,
    draft: Option<Draft>,
    notice: Option<String>,
    refused: Option<(StatusCode, String)>,
) -> HttpResponse {
    let snapshot = state.registry.snapshot();
    let Some(scope) = snapshot.tree.get(name) else {
        return crate::http::pages::error_page(StatusCode::NOT_FOUND, "No such scope", "The scope does not exist.");
    };
    let page = ScopePage {
        frame: console.frame("scopes", notice, refused.as_ref().map(|(_, message)| message.clone())),
        page_title: format!("Scope {name}"),
        name: name.to_string(),
        path: segment(name),
        draft: draft.unwrap_or_else(|| Draft::of_scope(scope)),
        parents: parent_choices(&snapshot.tree, scope.parent.as_deref(), Some(name)),
        position: scope.position,
        children: snapshot.tree.children(name).into_iter().map(|child| child.name.clone()).collect(),
    };
    render(refused.map_or(StatusCode::OK, |(status, _)| status), &page)
}

pub async fn edit(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    name: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (registry, actor, now, target) = (state.registry.clone(), console.actor(), state.clock.now(), name.clone());
    let edited = match fields_from(&form) {
        Ok(fields) => {
            let patch = ScopePatch::replacing_all(fields);
            state.db.run(move |connection| registry.edit(connection, &target, patch, &actor, now)).await
        }
        Err(error) => Err(error),
    };
    match edited {
        Ok(()) => Ok(done(&format!("/admin/scopes/{}", segment(&name)), "scope-updated")),
        Err(error) => {
            let draft = Draft::from_pairs(form_pairs(&form).chain([("loaded", "1")]));
            Ok(scope_page(&console, &state, &name, Some(draft), None, Some(refusal(error)?)))
        }
    }
}

pub async fn move_scope(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    name: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (registry, actor, now, target) = (state.registry.clone(), console.actor(), state.clock.now(), name.clone());
    let parent = form.first("parent").filter(|parent| !parent.is_empty()).map(str::to_string);
    let moved = match form.first("position").map(str::trim).filter(|p| !p.is_empty()).map(str::parse::<u32>) {
        Some(Err(_)) => Err(AppError::invalid_request("position: a whole number from 0")),
        position => {
            let position = position.and_then(Result::ok);
            state
                .db
                .run(move |connection| {
                    registry.move_scope(connection, &target, parent.as_deref(), position, &actor, now)
                })
                .await
        }
    };
    match moved {
        Ok(()) => Ok(done(&format!("/admin/scopes/{}", segment(&name)), "scope-moved")),
        Err(error) => Ok(scope_page(&console, &state, &name, None, None, Some(refusal(error)?))),
    }
}

pub async fn confirm_delete(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit(&session, &state, &request));
    let snapshot = state.registry.snapshot();
    let items: Vec<String> = snapshot.tree.subtree(&name).into_iter().map(|scope| scope.name.clone()).collect();
    if items.is_empty() {
        return Ok(crate::http::pages::error_page(StatusCode::NOT_FOUND, "No such scope", "The scope does not exist."));
    }
    let page = ConfirmPage {
        frame: console.frame("scopes", None, None),
        page_title: format!("Delete {}", name.as_str()),
        heading: format!("Delete the scope {} and everything below it?", name.as_str()),
        message: "These scopes will be deleted. A scope that a client is assigned or that an unexpired grant holds \
                  cannot be deleted; you will be told which."
            .into(),
        items,
        action: format!("/admin/scopes/{}/delete", segment(&name)),
        button: "Delete these scopes".into(),
        back: format!("/admin/scopes/{}", segment(&name)),
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn delete(
    session: Session,
    state: web::Data<AppState>,
    request: HttpRequest,
    name: web::Path<String>,
    form: HtmlForm,
) -> Result<HttpResponse, AppError> {
    let console = admitted!(admit_form(&session, &state, &request, &form));
    let (registry, actor, now, target) = (state.registry.clone(), console.actor(), state.clock.now(), name.clone());
    let deleted = state.db.run(move |connection| registry.delete_subtree(connection, &target, &actor, now)).await;
    match deleted {
        Ok(_) => Ok(done("/admin/scopes", "scope-deleted")),
        Err(AppError::Conflict { description, .. }) => {
            let (snapshot, target) = (state.registry.snapshot(), name.clone());
            let holders =
                state.db.run(move |connection| subtree_holders(connection, &snapshot.tree, &target, now)).await?;
            let page = ScopeInUsePage {
                frame: console.frame("scopes", None, Some(description)),
                page_title: format!("{} is in use", name.as_str()),
                path: segment(&name),
                name: name.into_inner(),
                clients: holders.clients,
                grants: holders.grants.into_iter().map(|g| (g.holder, g.client_id, g.scope)).collect(),
            };
            Ok(render(StatusCode::CONFLICT, &page))
        }
        Err(error) => Ok(scope_page(&console, &state, &name, None, None, Some(refusal(error)?))),
    }
}
