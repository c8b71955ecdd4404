//! `Set-Cookie` values for the CloudFront cookies: always `Secure; HttpOnly;
//! SameSite=None` (the CDN is another site for the browser), `Path=/` unless
//! told otherwise, and the `Domain` the page and the distribution share.

use std::fmt::Write;

use super::error::Error;
use super::sign::{ALL_COOKIES, SignedPolicy};

/// The attributes every CloudFront cookie is set with, rendered once.
///
/// ```
/// # use cfmint_signer::*;
/// # let key = PrivateKey::from_pem(
/// #     KeyPairId::new("K2JCJMDEHXQW5F")?,
/// #     &Backend::default().generate(KeySpec::EcdsaP256)?.private_pem,
/// #     KeySource::Inline,
/// #     Backend::default(),
/// # )?;
/// # let policy = Policy::builder(Resource::folder("https://cdn.example.com", "/a/")?)
/// #     .expires(2_000_000_000)
/// #     .build()?;
/// # let signed = key.sign(&policy, PolicyForm::Auto, HashAlgorithm::Sha256)?;
/// let attributes = CookieAttributes::new().domain("example.com")?;
/// let headers = attributes.set_cookies(&signed, Some(600));
/// assert!(headers[0].starts_with("CloudFront-Policy="));
/// assert!(headers[0].ends_with("; HttpOnly; SameSite=None; Secure; Path=/; Domain=example.com; Max-Age=600"));
/// // The canned-policy cookie a previous mint may have left is removed.
/// assert!(headers.iter().any(|h| h.starts_with("CloudFront-Expires=;") && h.ends_with("Max-Age=0")));
/// # Ok::<(), cfmint_signer::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAttributes {
    domain: Option<String>,
    path: String,
    /// Everything after `name=value` but `Max-Age`.
    rendered: String,
}

impl Default for CookieAttributes {
    fn default() -> Self {
        Self::new()
    }
}

impl CookieAttributes {
    /// `HttpOnly; SameSite=None; Secure; Path=/`, host-only (no `Domain`).
    pub fn new() -> Self {
        let mut attributes = Self {
            domain: None,
            path: "/".to_owned(),
            rendered: String::new(),
        };
        attributes.render();
        attributes
    }

    /// Sets `Domain`, e.g. `example.com` for a page on `www.example.com` and
    /// a distribution on `cdn.example.com`. Letters, digits, `-` and `.` only.
    pub fn domain(mut self, domain: &str) -> Result<Self, Error> {
        let name = domain.strip_prefix('.').unwrap_or(domain);
        let valid = name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(Error::policy(format!(
                "cookie domain \"{}\" is not a domain name",
                domain.escape_debug()
            )));
        }
        self.domain = Some(name.to_owned());
        self.render();
        Ok(self)
    }

    /// The `Domain` attribute, if set (without a leading dot).
    pub fn domain_attribute(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Sets `Path` (default `/`): a path starting with `/`, visible ASCII
    /// without `;`.
    pub fn path(mut self, path: &str) -> Result<Self, Error> {
        if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
            return Err(Error::policy(format!(
                "cookie path \"{}\" must start with / and be visible ASCII without ;",
                path.escape_debug()
            )));
        }
        self.path = path.to_owned();
        self.render();
        Ok(self)
    }

    fn render(&mut self) {
        self.rendered = format!("; HttpOnly; SameSite=None; Secure; Path={}", self.path);
        if let Some(domain) = &self.domain {
            let _ = write!(self.rendered, "; Domain={domain}");
        }
    }

    /// One `Set-Cookie` value; `max_age` in seconds, or a session cookie.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut text = String::with_capacity(name.len() + value.len() + self.rendered.len() + 20);
        text.push_str(name);
        text.push('=');
        text.push_str(value);
        text.push_str(&self.rendered);
        if let Some(seconds) = max_age {
            let _ = write!(text, "; Max-Age={seconds}");
        }
        text
    }

    /// The `Set-Cookie` values for a signed policy, then a removal for each
    /// CloudFront cookie it does not set (a canned policy after a custom one
    /// leaves no stale `CloudFront-Policy` behind). `max_age` is usually the
    /// policy's remaining lifetime.
    pub fn set_cookies(&self, signed: &SignedPolicy, max_age: Option<u64>) -> Vec<String> {
        let cookies = signed.cookies();
        let mut values = Vec::with_capacity(ALL_COOKIES.len());
        for (name, value) in &cookies {
            values.push(self.set_cookie(name, value, max_age));
        }
        for name in ALL_COOKIES {
            if !cookies.iter().any(|(set, _)| *set == name) {
                values.push(self.set_cookie(name, "", Some(0)));
            }
        }
        values
    }

    /// A removal (`Max-Age=0`, same `Domain` and `Path`) for every CloudFront
    /// cookie, for logging out.
    pub fn removals(&self) -> Vec<String> {
        ALL_COOKIES
            .iter()
            .map(|name| self.set_cookie(name, "", Some(0)))
            .collect()
    }
}
