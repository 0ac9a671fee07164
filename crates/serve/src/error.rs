//! Error answers of the HTTP servers built on this crate (the reward server and the search
//! gateway): a status, a machine-readable code and a message, written in each server's
//! body shape ([`ErrorShape`]); 503 carries `Retry-After: 1` and 401
//! `WWW-Authenticate: Bearer`; the code and message ride along in the response's
//! extensions ([`ErrorFields`]) for the request log. [`require_token`] is the bearer-token
//! middleware both run.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::marker::PhantomData;

/// How a server writes an error body.
pub trait ErrorShape: 'static {
    type Body: Serialize;
    fn body(status: StatusCode, code: &'static str, message: String) -> Self::Body;
}

/// The reward server's shape: `{"error": {"code", "message"}}` ([`crate::api::ErrorResponse`]).
#[derive(Debug, Clone, Copy)]
pub struct StepwiseShape;

impl ErrorShape for StepwiseShape {
    type Body = crate::api::ErrorResponse;
    fn body(_: StatusCode, code: &'static str, message: String) -> Self::Body {
        crate::api::ErrorResponse {
            error: crate::api::ErrorBody {
                code: code.to_string(),
                message,
            },
        }
    }
}

/// An error answered in the shape `S`.
#[derive(Debug)]
pub struct ApiError<S> {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    shape: PhantomData<fn() -> S>,
}

impl<S: ErrorShape> ApiError<S> {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            shape: PhantomData,
        }
    }

    /// The body as `S` writes it.
    pub fn body(&self) -> S::Body {
        S::body(self.status, self.code, self.message.clone())
    }
}

/// What went wrong, attached to an error response so the request log can carry it as fields.
#[derive(Debug, Clone)]
pub struct ErrorFields {
    pub code: &'static str,
    pub message: String,
}

impl<S: ErrorShape> IntoResponse for ApiError<S> {
    fn into_response(self) -> Response {
        let fields = ErrorFields {
            code: self.code,
            message: self.message.clone(),
        };
        let mut resp = (self.status, Json(self.body())).into_response();
        resp.extensions_mut().insert(fields);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// With a `token`, every request but those to the `open` paths must carry
/// `Authorization: Bearer <token>` (compared in constant time), else 401.
pub async fn require_token<S: ErrorShape>(
    token: Option<&str>,
    open: &[&str],
    req: Request,
    next: Next,
) -> Response {
    match token {
        Some(token)
            if !open.contains(&req.uri().path())
                && !crate::conn::authorized(req.headers(), token) =>
        {
            ApiError::<S>::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong bearer token (send `Authorization: Bearer <token>`)",
            )
            .into_response()
        }
        _ => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Flat;
    impl ErrorShape for Flat {
        type Body = serde_json::Value;
        fn body(status: StatusCode, code: &'static str, message: String) -> Self::Body {
            serde_json::json!({"status": status.as_u16(), "code": code, "message": message})
        }
    }

    #[test]
    fn answers_in_the_shape_with_the_headers_and_the_log_fields() {
        let r = ApiError::<Flat>::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "later")
            .into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let f = r.extensions().get::<ErrorFields>().unwrap();
        assert_eq!((f.code, f.message.as_str()), ("overloaded", "later"));
        let r = ApiError::<StepwiseShape>::new(StatusCode::UNAUTHORIZED, "unauthorized", "no")
            .into_response();
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        assert!(!r.headers().contains_key(header::RETRY_AFTER));
        let b = ApiError::<Flat>::new(StatusCode::BAD_REQUEST, "bad_json", "x").body();
        assert_eq!(b["status"], 400);
    }
}
