//! What handlers take from a call: the verified caller ([`Caller`], an
//! axum extractor: a handler that names it cannot run for anyone the hub
//! did not accept), the bearer token, and the peer address limits count.

use std::net::SocketAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::authority::AuthError;
use super::error::{Error, Failure};
use super::Shared;
use crate::domain::Subject;

/// Who is calling: the bearer token, as the authority resolves it. The
/// refusal of a call without one is recorded by the refusals layer.
pub(crate) struct Caller(pub Subject);

impl FromRequestParts<Shared> for Caller {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Failure> {
        let Some(token) = bearer(&parts.headers) else {
            s.metrics.refused("no-token");
            return Err(Error::Unauthorized.into());
        };
        match s.authority.authenticate(token).await {
            Ok(who) => Ok(Caller(who)),
            Err(AuthError::Rejected) => {
                s.metrics.refused("bad-token");
                Err(Error::Unauthorized.into())
            }
            Err(AuthError::Unavailable(why)) => {
                Err(Error::Unavailable(format!("cannot check the token: {why}")).into())
            }
        }
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Calls are limited per peer address; in-process calls (tests through
/// `oneshot`) share the loopback's budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerAddress;

impl tower_governor::key_extractor::KeyExtractor for PeerAddress {
    type Key = std::net::IpAddr;
    fn extract<T>(
        &self,
        req: &axum::http::Request<T>,
    ) -> Result<Self::Key, tower_governor::GovernorError> {
        Ok(peer(req.extensions()))
    }
}

/// The caller's address as limits count it: IPv4 whole, IPv6 by its /64
/// (one host usually holds a whole /64).
pub(crate) fn peer(ext: &axum::http::Extensions) -> std::net::IpAddr {
    use std::net::IpAddr;
    match ext
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !0u128 << 64).into()),
        },
        Some(v4) => v4,
        None => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    }
}
