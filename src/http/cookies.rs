//! The CloudFront cookies: `Secure; HttpOnly; SameSite=None; Path=/`, the
//! configured `Domain`, and `Max-Age` = remaining policy lifetime.

use axum::http::HeaderValue;
use cookie::{Cookie, SameSite};

use crate::config::{CookieLifetime, Settings};
use crate::signer::{ALL_COOKIES, SignedPolicy};

/// `Set-Cookie` values for a mint, plus removals for any CloudFront cookie
/// this mint does not set (a canned mint after a custom one, say).
pub fn minted(settings: &Settings, signed: &SignedPolicy, max_age: u64) -> Vec<HeaderValue> {
    let cookies = signed.cookies();
    let max_age = match settings.mint.cookie_lifetime {
        CookieLifetime::Policy => Some(max_age),
        CookieLifetime::Session => None,
    };
    let mut values: Vec<HeaderValue> = cookies
        .iter()
        .map(|(name, value)| render(settings, name, value, max_age))
        .collect();
    values.extend(
        ALL_COOKIES
            .iter()
            .filter(|name| !cookies.iter().any(|(set, _)| set == *name))
            .map(|name| render(settings, name, "", Some(0))),
    );
    values
}

/// Removals for every CloudFront cookie (same Domain and Path, `Max-Age=0`).
pub fn cleared(settings: &Settings) -> Vec<HeaderValue> {
    ALL_COOKIES
        .iter()
        .map(|name| render(settings, name, "", Some(0)))
        .collect()
}

fn render(settings: &Settings, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut cookie = Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::None);
    if let Some(domain) = &settings.cloudfront.cookie_domain {
        cookie = cookie.domain(domain.as_str());
    }
    if let Some(seconds) = max_age {
        cookie = cookie.max_age(cookie::time::Duration::seconds(seconds as i64));
    }
    HeaderValue::try_from(cookie.build().to_string())
        .expect("cookie names and CloudFront base64 values are valid header text")
}
