//! The CloudFront cookies: `Secure; HttpOnly; SameSite=None; Path=/`, the
//! configured `Domain`, and `Max-Age` = remaining policy lifetime. The
//! attributes and the removals never change, so they are rendered once.

use std::fmt::Write;

use axum::http::HeaderValue;
use cookie::{Cookie, SameSite};

use crate::config::{CookieLifetime, Settings};
use crate::signer::{ALL_COOKIES, SignedPolicy};

pub struct CloudFrontCookies {
    /// Everything after `name=value`, as the cookie crate renders it.
    attributes: String,
    lifetime: CookieLifetime,
    /// A `Max-Age=0` removal for each of [`ALL_COOKIES`], in that order.
    removals: Vec<HeaderValue>,
}

impl CloudFrontCookies {
    pub fn new(settings: &Settings) -> Self {
        let rendered = |name: &str, max_age: Option<i64>| {
            let mut cookie = Cookie::build((name, ""))
                .path("/")
                .secure(true)
                .http_only(true)
                .same_site(SameSite::None);
            if let Some(domain) = &settings.cloudfront.cookie_domain {
                cookie = cookie.domain(domain.as_str());
            }
            if let Some(seconds) = max_age {
                cookie = cookie.max_age(cookie::time::Duration::seconds(seconds));
            }
            cookie.build().to_string()
        };
        let attributes = rendered("x", None)["x=".len()..].to_owned();
        let removals = ALL_COOKIES
            .iter()
            .map(|name| header_value(rendered(name, Some(0))))
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
        let cookies = signed.cookies();
        let mut values = Vec::with_capacity(ALL_COOKIES.len());
        for (name, value) in &cookies {
            let mut text =
                String::with_capacity(name.len() + value.len() + self.attributes.len() + 20);
            text.push_str(name);
            text.push('=');
            text.push_str(value);
            text.push_str(&self.attributes);
            if self.lifetime == CookieLifetime::Policy {
                let _ = write!(text, "; Max-Age={max_age}");
            }
            values.push(header_value(text));
        }
        for (name, removal) in ALL_COOKIES.iter().zip(&self.removals) {
            if !cookies.iter().any(|(set, _)| set == name) {
                values.push(removal.clone());
            }
        }
        values
    }

    /// Removals for every CloudFront cookie (same Domain and Path, `Max-Age=0`).
    pub fn cleared(&self) -> &[HeaderValue] {
        &self.removals
    }
}

fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text)
        .expect("cookie names and CloudFront base64 values are valid header text")
}

#[cfg(test)]
mod tests {
    use cookie::Cookie;

    use super::CloudFrontCookies;
    use crate::signer::{Backend, KeyPairId, KeySource, KeySpec, Policy, PolicyForm, PrivateKey};

    #[test]
    fn pre_rendered_attributes_match_the_cookie_crate() {
        let toml = "[cloudfront]\nbase_url = \"https://cdn.example.com\"\n\
                    cookie_domain = \"example.com\"\n[auth.users]\ndemo = true\n";
        let settings = crate::Settings::load(toml, std::iter::empty()).unwrap();
        let cookies = CloudFrontCookies::new(&settings);
        let backend = Backend::default();
        let pem = backend.generate(KeySpec::EcdsaP256).unwrap().private_pem;
        let id = KeyPairId::new("KTEST").unwrap();
        let key = PrivateKey::from_pem(id, &pem, KeySource::Inline, backend).unwrap();
        let policy = Policy::builder("https://cdn.example.com/a/*")
            .expires(2_000_000_000)
            .build()
            .unwrap();
        let signed = key
            .sign(&policy, PolicyForm::Auto, Default::default())
            .unwrap();
        let values = cookies.minted(&signed, 600);
        assert_eq!(values.len(), 5, "three cookies and two removals");
        for (value, (name, content)) in values.iter().zip(signed.cookies()) {
            let expected = Cookie::build((name, content))
                .path("/")
                .secure(true)
                .http_only(true)
                .same_site(cookie::SameSite::None)
                .domain("example.com")
                .max_age(cookie::time::Duration::seconds(600))
                .build()
                .to_string();
            assert_eq!(value.to_str().unwrap(), expected);
        }
        for removal in &values[3..] {
            let removal = Cookie::parse(removal.to_str().unwrap()).unwrap();
            assert_eq!(removal.value(), "");
            assert_eq!(removal.max_age(), Some(cookie::time::Duration::ZERO));
            assert_eq!(removal.domain(), Some("example.com"));
        }
    }
}
