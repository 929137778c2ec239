//! JSON bodies for the admin API: a malformed body is a 400 whose message names the bad
//! field (`at parent: invalid type …`, or `access_duration_days: invalid value …` for one of
//! the flattened `ScopeFields`, see there), never a 500.

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, FromRequest, HttpRequest};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;

use crate::error::AppError;

const MAX_JSON_BYTES: usize = 1024 * 1024;

pub struct ApiJson<T>(pub T);

/// Parses a JSON body, naming the path of the offending field in the error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        if path == "." {
            format!("malformed JSON body: {}", error.inner())
        } else {
            format!("malformed JSON body at {path}: {}", error.inner())
        }
    })?;
    deserializer.end().map_err(|error| format!("malformed JSON body: {error}"))?;
    super::input::check_json_escapes(body).map_err(|error| error.to_string())?;
    Ok(value)
}

fn is_json(request: &HttpRequest) -> bool {
    request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).is_some_and(
        |mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        },
    )
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(request);
        let body = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            if !json {
                return Err(AppError::invalid_request("the body must be JSON (Content-Type: application/json)"));
            }
            let body = body.await.map_err(|error| AppError::invalid_request(format!("unreadable body: {error}")))?;
            if body.len() > MAX_JSON_BYTES {
                return Err(AppError::invalid_request("the body is too large"));
            }
            // serde would read a struct from a JSON array too; every admin body is an object.
            if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return Err(AppError::invalid_request("malformed JSON body: expected a JSON object"));
            }
            parse_json(&body).map(ApiJson).map_err(AppError::invalid_request)
        })
    }
}
