//! OAuth endpoints take `application/x-www-form-urlencoded` bodies in which no parameter may
//! appear twice (RFC 6749 §3.2). actix's `Form` would silently keep one of the copies.

use actix_web::dev::Payload;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, FromRequest, HttpRequest};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::error::AppError;

/// The largest body an OAuth form may have; tokens and scopes fit easily.
const MAX_FORM_BYTES: usize = 64 * 1024;

#[derive(Debug, Default, Clone)]
pub struct OAuthForm(BTreeMap<String, String>);

impl OAuthForm {
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, AppError> {
        let is_form = content_type
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(AppError::invalid_request("the body must be application/x-www-form-urlencoded"));
        }
        super::input::check_form_body(body)?;
        let mut params = BTreeMap::new();
        for (key, value) in url::form_urlencoded::parse(body) {
            if params.insert(key.to_string(), value.to_string()).is_some() {
                return Err(AppError::invalid_request(format!("parameter {key:?} appears more than once")));
            }
        }
        Ok(Self(params))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// A parameter that must be present and non-empty.
    pub fn required(&self, key: &str) -> Result<&str, AppError> {
        self.get(key)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| AppError::invalid_request(format!("the {key} parameter is required")))
    }
}

impl FromRequest for OAuthForm {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            let body = body.await.map_err(|error| AppError::invalid_request(format!("unreadable body: {error}")))?;
            if body.len() > MAX_FORM_BYTES {
                return Err(AppError::invalid_request("the body is too large"));
            }
            OAuthForm::parse(content_type.as_deref(), &body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_parameter_is_refused() {
        let error = OAuthForm::parse(Some("application/x-www-form-urlencoded"), b"a=1&a=2").unwrap_err();
        assert_eq!(error.code(), "invalid_request");
    }

    #[test]
    fn values_are_url_decoded_and_charset_suffixes_accepted() {
        let form =
            OAuthForm::parse(Some("application/x-www-form-urlencoded; charset=UTF-8"), b"scope=a+b%3Ac").unwrap();
        assert_eq!(form.get("scope"), Some("a b:c"));
    }

    #[test]
    fn other_content_types_are_refused() {
        assert!(OAuthForm::parse(Some("application/json"), b"{}").is_err());
        assert!(OAuthForm::parse(None, b"a=1").is_err());
    }
}

/// An HTML form's fields, repeats allowed (the consent form sends one `scope` per ticked box).
#[derive(Debug, Default, Clone)]
pub struct HtmlForm(Vec<(String, String)>);

impl HtmlForm {
    pub fn first(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every field in the order sent.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl FromRequest for HtmlForm {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            let body = body.await.map_err(|error| AppError::invalid_request(format!("unreadable body: {error}")))?;
            if body.len() > MAX_FORM_BYTES {
                return Err(AppError::invalid_request("the body is too large"));
            }
            super::input::check_form_body(&body)?;
            Ok(HtmlForm(url::form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()))
        })
    }
}
