//! OpenID Connect login: the authorization-code flow with PKCE (S256),
//! `state` and `nonce`, through the `openidconnect` crate. Provider metadata
//! comes from discovery and is cached; an ID token signed by a key the cached
//! JWKS lacks triggers one fresh discovery before it is refused.

use std::collections::BTreeSet;
use std::time::Duration;
#[cfg(feature = "oidc")]
use std::time::Instant;

#[cfg(feature = "oidc")]
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
#[cfg(feature = "oidc")]
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
#[cfg(feature = "oidc")]
use serde_json::{Map, Value};
#[cfg(feature = "oidc")]
use tokio::sync::RwLock;

use super::Identity;
#[cfg(feature = "oidc")]
use super::Method;

#[cfg(feature = "oidc")]
/// A client built from discovery: authorization endpoint known, token and
/// userinfo endpoints as the provider announced them.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What `[auth.oidc]` configures.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: secrecy::SecretString,
    /// cfmint's own callback URL, as registered with the provider.
    pub redirect_url: String,
    pub scopes: Vec<String>,
    /// Where a login may return to: exact origins or origin + path prefixes.
    pub return_urls: Vec<String>,
    pub metadata_ttl: Duration,
    /// Send the browser to the provider's `end_session_endpoint` at logout.
    pub end_session: bool,
    /// Where the provider sends the browser after that logout.
    pub post_logout_url: Option<String>,
    /// Mint `mint.default_path` in the callback's redirect.
    pub mint_on_login: bool,
}

/// A login under way, kept in the session between the redirect and the
/// callback. Single use: the callback removes it before anything else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    pub return_to: String,
}

/// What went wrong; the messages go to the browser, the details
/// ([`OidcError::detail`]) only to the log.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider is unavailable; retry shortly")]
    Provider(String),
    #[error("no matching login in progress (wrong or reused state); start the login again")]
    State,
    #[error("the identity provider refused the login code; start the login again")]
    Code(String),
    #[error("the identity provider's ID token was refused")]
    IdToken(String),
    #[error("that return URL is not on the allowed list")]
    ReturnUrl(String),
}

impl OidcError {
    pub fn detail(&self) -> Option<String> {
        match self {
            Self::Provider(detail)
            | Self::Code(detail)
            | Self::IdToken(detail)
            | Self::ReturnUrl(detail) => Some(detail.clone()),
            Self::State => None,
        }
    }
}

#[cfg(feature = "oidc")]
pub struct OidcClient {
    settings: OidcSettings,
    claims_needed: BTreeSet<String>,
    paths_claim: Option<String>,
    http: reqwest::Client,
    metadata: RwLock<Option<(ProviderMetadataWithLogout, Instant)>>,
}

#[cfg(feature = "oidc")]
impl OidcClient {
    pub fn new(
        settings: OidcSettings,
        claims_needed: BTreeSet<String>,
        paths_claim: Option<String>,
    ) -> Result<Self, String> {
        crate::tls::require_crypto_provider("OpenID provider HTTP client")?;
        // Never follow redirects on the back channel (the crate's advice).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            settings,
            claims_needed,
            paths_claim,
            http,
            metadata: RwLock::new(None),
        })
    }

    /// The provider's metadata, from the cache while it is fresh.
    async fn metadata(&self, fresh: bool) -> Result<ProviderMetadataWithLogout, OidcError> {
        if !fresh
            && let Some((metadata, at)) = &*self.metadata.read().await
            && at.elapsed() < self.settings.metadata_ttl
        {
            return Ok(metadata.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| OidcError::Provider(format!("issuer: {e}")))?;
        let client = self.http.clone();
        let http = move |request| send(client.clone(), request);
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &http)
            .await
            .map_err(|e| OidcError::Provider(format!("discovery: {}", report(&e))))?;
        *self.metadata.write().await = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    /// The provider URL to send the browser to, and what the callback needs.
    pub async fn begin(&self, return_to: String) -> Result<(String, Pending), OidcError> {
        let client = self.client(self.metadata(false).await?)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            return_to,
        };
        Ok((url.to_string(), pending))
    }

    /// Checks `state`, exchanges the code and validates the ID token
    /// (signature, `iss`, `aud`, `exp`, `nonce`).
    pub async fn finish(
        &self,
        pending: &Pending,
        code: &str,
        state: &str,
    ) -> Result<Identity, OidcError> {
        use subtle::ConstantTimeEq;
        if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
            return Err(OidcError::State);
        }
        let client = self.client(self.metadata(false).await?)?;
        let http_client = self.http.clone();
        let http = move |request| send(http_client.clone(), request);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Code(report(&e)))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| OidcError::IdToken("the provider sent no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce.clone());
        let verified = id_token.claims(&client.id_token_verifier(), &nonce);
        if let Err(openidconnect::ClaimsVerificationError::SignatureVerification(_)) = &verified {
            // Perhaps the provider rotated its keys: look once more.
            let client = self.client(self.metadata(true).await?)?;
            id_token
                .claims(&client.id_token_verifier(), &nonce)
                .map_err(|e| OidcError::IdToken(e.to_string()))?;
        } else {
            verified.map_err(|e| OidcError::IdToken(e.to_string()))?;
        }
        // Verified above; read the claims grants look at from the payload.
        let payload = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|part| {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(part)
                    .ok()
            })
            .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
            .ok_or_else(|| OidcError::IdToken("unreadable claims".into()))?;
        Identity::from_claims(
            &payload,
            Method::Oidc,
            &self.claims_needed,
            self.paths_claim.as_deref(),
        )
        .ok_or_else(|| OidcError::IdToken("no subject".into()))
    }

    /// The provider's logout URL for an OIDC session, when `end_session` is
    /// on (RP-initiated logout); `None` when off or the provider has none.
    pub async fn end_session_url(&self) -> Result<Option<String>, OidcError> {
        if !self.settings.end_session {
            return Ok(None);
        }
        let metadata = self.metadata(false).await?;
        let Some(endpoint) = metadata.additional_metadata().end_session_endpoint.clone() else {
            return Ok(None);
        };
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.settings.client_id.clone()));
        if let Some(url) = &self.settings.post_logout_url {
            let url = PostLogoutRedirectUrl::new(url.clone())
                .map_err(|e| OidcError::Provider(format!("post-logout URL: {e}")))?;
            request = request.set_post_logout_redirect_uri(url);
        }
        Ok(Some(request.http_get_url().to_string()))
    }

    pub fn mint_on_login(&self) -> bool {
        self.settings.mint_on_login
    }

    /// Fetches the provider's discovery document once (`cfmint check
    /// --network`).
    pub async fn reach(&self) -> Result<(), String> {
        self.metadata(true).await.map(|_| ()).map_err(|e| match e {
            OidcError::Provider(detail) => detail,
            other => other.to_string(),
        })
    }

    /// `return_to` if it is on the allow-list, else an error; the first
    /// allowed URL when none is given.
    pub fn return_url(&self, return_to: Option<&str>) -> Result<String, OidcError> {
        let Some(wanted) = return_to else {
            return self
                .settings
                .return_urls
                .first()
                .cloned()
                .ok_or_else(|| OidcError::ReturnUrl("none configured".into()));
        };
        let allowed = self.settings.return_urls.iter().any(|allowed| {
            wanted == allowed || (allowed.ends_with('/') && wanted.starts_with(allowed.as_str()))
        });
        // Visible ASCII only (it becomes a Location header), and nothing that
        // could move the authority elsewhere.
        let plain = wanted.bytes().all(|b| b.is_ascii_graphic()) && !wanted.contains(['\\', '@']);
        if allowed && plain {
            Ok(wanted.to_owned())
        } else {
            Err(OidcError::ReturnUrl(wanted.to_owned()))
        }
    }

    /// This client at the provider `metadata` describes.
    fn client(&self, metadata: ProviderMetadataWithLogout) -> Result<Client, OidcError> {
        use secrecy::ExposeSecret;
        let secret = ClientSecret::new(self.settings.client_secret.expose_secret().to_owned());
        let redirect = RedirectUrl::new(self.settings.redirect_url.clone())
            .map_err(|e| OidcError::Provider(format!("redirect URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(secret),
        )
        .set_redirect_uri(redirect))
    }
}

/// A build without the `oidc` feature has no OpenID client: configuration
/// validation refuses `[auth.oidc]`, and no value of this type can exist.
#[cfg(not(feature = "oidc"))]
pub enum OidcClient {}

#[cfg(not(feature = "oidc"))]
impl OidcClient {
    pub fn new(
        _settings: OidcSettings,
        _claims_needed: BTreeSet<String>,
        _paths_claim: Option<String>,
    ) -> Result<Self, String> {
        Err(NOT_BUILT.to_owned())
    }

    pub async fn begin(&self, _return_to: String) -> Result<(String, Pending), OidcError> {
        match *self {}
    }

    pub async fn finish(
        &self,
        _pending: &Pending,
        _code: &str,
        _state: &str,
    ) -> Result<Identity, OidcError> {
        match *self {}
    }

    pub async fn end_session_url(&self) -> Result<Option<String>, OidcError> {
        match *self {}
    }

    pub fn mint_on_login(&self) -> bool {
        match *self {}
    }

    pub async fn reach(&self) -> Result<(), String> {
        match *self {}
    }

    pub fn return_url(&self, _return_to: Option<&str>) -> Result<String, OidcError> {
        match *self {}
    }
}

/// Why `[auth.oidc]` is refused by a build without the `oidc` feature.
pub const NOT_BUILT: &str = "this build of cfmint has no OpenID Connect support \
                             (built without the `oidc` cargo feature)";

/// openidconnect's HTTP requests, sent with cfmint's reqwest.
#[cfg(feature = "oidc")]
async fn send(
    client: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let request = reqwest::Request::try_from(request)?;
    let response = client.execute(request).await?;
    let mut builder = axum::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder
        .body(body)
        .expect("a status and headers from a response"))
}

/// An error with its sources, for the log.
pub(crate) fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{OidcError, report};

    #[derive(Debug, thiserror::Error)]
    #[error("discovery failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_report_carries_every_cause() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(report(&error), "discovery failed: connection refused");
    }

    #[test]
    fn details_are_kept_for_the_log_and_out_of_the_message() {
        let detail = "discovery: connection refused";
        for error in [
            OidcError::Provider(detail.into()),
            OidcError::Code(detail.into()),
            OidcError::IdToken(detail.into()),
            OidcError::ReturnUrl(detail.into()),
        ] {
            assert_eq!(error.detail().as_deref(), Some(detail));
            assert!(!error.to_string().contains(detail), "{error}");
        }
        assert_eq!(OidcError::State.detail(), None);
    }
}
