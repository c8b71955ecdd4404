//! The CloudFront cookies as response headers: `Secure; HttpOnly;
//! SameSite=None; Path=/`, the configured `Domain`, and (with
//! `mint.cookie_lifetime = "policy"`) `Max-Age` = remaining policy lifetime.
//! The removals never change, so they are rendered once.

use axum::http::HeaderValue;

use crate::config::{CookieLifetime, Settings};
use crate::signer::{CookieAttributes, SignedPolicy};

pub struct CloudFrontCookies {
    attributes: CookieAttributes,
    lifetime: CookieLifetime,
    /// A `Max-Age=0` removal for each CloudFront cookie.
    removals: Vec<HeaderValue>,
}

impl CloudFrontCookies {
    pub fn new(settings: &Settings) -> Self {
        let attributes = settings.cloudfront.cookies.clone();
        let removals = attributes
            .removals()
            .into_iter()
            .map(header_value)
            .collect();
        Self {
            attributes,
            lifetime: settings.mint.cookie_lifetime,
            removals,
        }
    }

    /// `Set-Cookie` values for a mint, plus removals for any CloudFront
    /// cookie this mint does not set (a canned mint after a custom one, say).
    pub fn minted(&self, signed: &SignedPolicy, max_age: u64) -> Vec<HeaderValue> {
        let max_age = (self.lifetime == CookieLifetime::Policy).then_some(max_age);
        self.attributes
            .set_cookies(signed, max_age)
            .into_iter()
            .map(header_value)
            .collect()
    }

    /// Removals for every CloudFront cookie (same Domain and Path, `Max-Age=0`).
    pub fn cleared(&self) -> &[HeaderValue] {
        &self.removals
    }
}

fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text)
        .expect("cookie names, CloudFront base64 values and checked attributes are header text")
}
