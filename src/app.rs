//! Start-up that tests can drive: `Application::build` loads keys, users and
//! stores and binds the listeners; `run_until` serves until told to stop,
//! then drains in-flight requests within the configured bound.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::authorize::Authorizer;
use crate::auth::grants::Grants;
use crate::auth::jwt::JwtKeySource;
use crate::auth::jwt::JwtVerifier;
use crate::auth::oidc::OidcClient;
use crate::auth::users::Users;
use crate::config::{RingSource, Settings, StoreKind};
use crate::http::cookies::CloudFrontCookies;
use crate::http::{AppState, Shared, admin_router, router};
use crate::keyring::{
    ConfigSource, KeyHolder, connect_remote_keys, key_ring, reload_on_signal, resolve_ring,
    watch_remote_keys,
};
use crate::metrics::Metrics;
use crate::minter::{Minter, RemoteSigning};
use crate::playlist::Playlists;
use crate::signer::{ErrorKind, KeyRing};

/// How often keys in stores are checked, and reconnected when they were
/// unreachable.
const REMOTE_CHECK_INTERVAL: Duration = Duration::from_secs(2);
use crate::ratelimit::RateLimits;
use crate::session::Store;
use crate::tls::{self, Tls};

pub struct Application {
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: AppState,
    shutdown_timeout: Duration,
    tls: Option<Tls>,
    source: Option<ConfigSource>,
}

/// How far start-up reaches beyond files and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// `serve`: stores and providers are called; one that does not answer
    /// yet is waited for (with `/readyz` failing) rather than refused.
    Serve,
    /// `check`: nothing on the network is called.
    Offline,
    /// `check --network`: each store and provider is called once, within its
    /// configured timeout, and one that does not answer is a problem.
    Network,
}

/// What start-up loads before binding: everything but the listeners.
struct Loaded {
    metrics: Arc<Metrics>,
    ring: KeyRing,
    ring_version: Option<String>,
    grants: Grants,
    authorizer: Option<Authorizer>,
    users: Option<Users>,
    jwt: Option<JwtVerifier>,
    oidc: Option<OidcClient>,
    store: Option<Store>,
    tls: Option<Tls>,
    playlists: Option<Playlists>,
}

/// What `cfmint check` found.
pub struct Checked {
    /// The problems as `serve` would report them, if any.
    pub problems: Option<String>,
    /// The network dependencies the configuration names, by key: called
    /// with [`Reach::Network`], else not.
    pub dependencies: Vec<&'static str>,
}

impl Application {
    /// Loads everything the service needs and binds its listeners; any
    /// failure names what and where.
    pub async fn build(mut settings: Settings) -> Result<Self, String> {
        // Every step that reads a file, the environment or the network is
        // tried, and all their problems are reported together.
        let mut problems = Vec::new();
        let mut dependencies = Vec::new();
        let loaded = load(
            &mut settings,
            Reach::Serve,
            &mut problems,
            &mut dependencies,
        )
        .await;
        let listener = noted(
            &mut problems,
            TcpListener::bind(settings.server.listen)
                .await
                .map_err(|e| format!("server.listen: cannot bind {}: {e}", settings.server.listen)),
        );
        let admin = match settings.server.admin_listen {
            Some(address) => noted(
                &mut problems,
                TcpListener::bind(address)
                    .await
                    .map(Some)
                    .map_err(|e| format!("server.admin_listen: cannot bind {address}: {e}")),
            ),
            None => Some(None),
        };
        let (Some(loaded), Some(listener), Some(admin)) = (loaded, listener, admin) else {
            return Err(startup_problems(&problems));
        };
        let Some(store) = loaded.store else {
            unreachable!("start-up for serving makes its store");
        };
        let minter = Minter::new(
            loaded.ring,
            settings.cloudfront.clone(),
            settings.mint.clone(),
        )
        .map_err(|e| format!("mint.signing: cannot start the signing threads: {e}"))?
        .with_remote(RemoteSigning::new(
            settings.keys.remote_concurrency,
            settings.keys.remote_timeout,
            REMOTE_CHECK_INTERVAL,
            Some(loaded.metrics.clone()),
        ))
        .with_ring_version(loaded.ring_version);
        let allowed_origins = settings
            .cors
            .allowed_origins
            .iter()
            .filter_map(|origin| origin.parse().ok())
            .collect();
        let state = AppState::new(Shared {
            limits: rate_limits(&settings, &store),
            settings: settings.clone(),
            minter: Arc::new(minter),
            users: loaded.users,
            jwt: loaded.jwt,
            oidc: loaded.oidc,
            grants: loaded.grants,
            authorizer: loaded.authorizer,
            playlists: loaded.playlists,
            store,
            metrics: loaded.metrics,
            allowed_origins,
            cookies: CloudFrontCookies::new(&settings),
            draining: false.into(),
        });
        Ok(Self {
            listener,
            admin,
            state,
            shutdown_timeout: settings.server.shutdown_timeout,
            tls: loaded.tls,
            source: None,
        })
    }

    /// Everything [`Application::build`] checks, through the same steps,
    /// without binding a port; the network only with [`Reach::Network`].
    pub async fn check(mut settings: Settings, reach: Reach) -> Checked {
        let mut problems = Vec::new();
        let mut dependencies = Vec::new();
        if let Some(loaded) = load(&mut settings, reach, &mut problems, &mut dependencies).await
            && let Some(store) = loaded.store
        {
            store.close().await;
        }
        Checked {
            problems: (!problems.is_empty()).then(|| startup_problems(&problems)),
            dependencies,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Where SIGHUP (and `keys.watch`) reload the keys from.
    pub fn with_config_source(mut self, source: ConfigSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Serves the API over TLS with this certificate (instead of the configured one).
    pub fn with_tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or ctrl-c.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then drains for at most the shutdown timeout.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stopping_tx, stopping) = watch::channel(false);
        let bound = self.shutdown_timeout;
        let drain_delay = self.state.settings.server.drain_delay;
        let maintenance = tokio::spawn(maintain(self.state.clone()));
        let holder = KeyHolder::new(
            self.state.minter.clone(),
            self.state.metrics.clone(),
            &self.state.settings,
        );
        let key_watcher = tokio::spawn(watch_remote_keys(
            holder,
            self.state.settings.keys.remote_timeout,
            REMOTE_CHECK_INTERVAL,
        ));
        let reloader = self.source.map(|source| {
            let watch = self.state.settings.keys.watch;
            let holder = KeyHolder::new(
                self.state.minter.clone(),
                self.state.metrics.clone(),
                &self.state.settings,
            );
            tokio::spawn(reload_on_signal(holder, source, watch))
        });
        let stopped = {
            let mut stopping = stopping.clone();
            async move {
                let _ = stopping.wait_for(|s| *s).await;
            }
        };
        if let Some(admin) = self.admin {
            let app = admin_router(self.state.clone());
            let mut stopping = stopping.clone();
            tokio::spawn(async move {
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                let serve = axum::serve(admin, app).with_graceful_shutdown(async move {
                    let _ = stopping.wait_for(|s| *s).await;
                });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "admin listener failed");
                }
            });
        }
        let serve = tls::serve(self.listener, router(self.state.clone()), self.tls, stopped);
        let mut serve = std::pin::pin!(serve);
        let result = tokio::select! {
            result = &mut serve => result,
            () = stop => {
                self.state.draining.store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    drain_delay = ?drain_delay,
                    drain_bound = ?bound,
                    "shutting down: readiness fails, still serving"
                );
                // Serve on while load balancers notice /readyz failing.
                match tokio::time::timeout(drain_delay, &mut serve).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::info!("shutting down: listener closed, finishing requests");
                        let _ = stopping_tx.send(true);
                        match tokio::time::timeout(bound, &mut serve).await {
                            Ok(result) => result,
                            Err(_) => {
                                tracing::warn!(
                                    "drain bound reached; closing remaining connections"
                                );
                                Ok(())
                            }
                        }
                    }
                }
            }
        };
        maintenance.abort();
        key_watcher.abort();
        if let Some(reloader) = reloader {
            reloader.abort();
        }
        self.state.store.close().await;
        result
    }
}

/// Periodic upkeep: expired in-memory sessions and idle rate-limit buckets.
async fn maintain(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.store.purge_expired();
        state.limits.prune();
    }
}

/// SIGTERM or ctrl-c. The handlers are installed when this is called (not
/// when first polled), so a signal that arrives once the caller has said it
/// is serving is never the default "terminate at once".
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        let wait = |signal: std::io::Result<tokio::signal::unix::Signal>| async move {
            match signal {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            () = wait(terminate) => {},
            () = wait(interrupt) => {},
        }
    }
}

/// Loads keys, users, providers, the session store and TLS, noting every
/// problem. `dependencies` lists the network dependencies the configuration
/// names (each called once with [`Reach::Network`]).
async fn load(
    settings: &mut Settings,
    reach: Reach,
    problems: &mut Vec<String>,
    dependencies: &mut Vec<&'static str>,
) -> Option<Loaded> {
    let metrics = Arc::new(Metrics::new());
    // With the ring in a secret or file, its keys are read first; a secret
    // is on the network.
    let secret = matches!(settings.keys.ring, Some(RingSource::Secret(_)));
    if secret {
        dependencies.push("keys.secret_id");
    }
    let ring_version = if secret && reach == Reach::Offline {
        None
    } else {
        noted(problems, resolve_ring(settings).await)
    };
    let ring = match ring_version {
        Some(_) => noted(problems, key_ring(settings)),
        None => None,
    };
    if let Some(ring) = &ring {
        if ring.keys().iter().any(|key| key.remote_key().is_some()) {
            dependencies.push("keys.key (KMS or PKCS#11)");
        }
        // A store that answers with the wrong kind of key is a configuration
        // error; one that does not answer yet is waited for when serving,
        // with /readyz failing until it does.
        if reach != Reach::Offline {
            let timeout = settings.keys.remote_timeout;
            for (id, result) in connect_remote_keys(ring, settings, timeout).await {
                match result {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Unavailable && reach == Reach::Serve => {
                        tracing::warn!(
                            key_pair_id = %id,
                            error = %e,
                            "the key's store is not reachable yet; /readyz fails until it is"
                        );
                    }
                    Err(e) => problems.push(format!("keys: key {id}: {e}")),
                }
            }
        }
        if reach == Reach::Serve {
            tracing::info!(
                key_pair_id = %ring.active().id(),
                algorithm = %ring.active().algorithm().map_or("not yet known".to_owned(), |a| a.to_string()),
                source = %ring.active().source(),
                keys = ring.keys().len(),
                "signing key loaded"
            );
        }
    }
    let grants = Grants {
        grants: settings.grants.clone(),
        paths_claim: settings
            .auth
            .jwt
            .as_ref()
            .and_then(|j| j.paths_claim.clone()),
    };
    // Sessions and tokens keep the claims grant conditions look at and those
    // the authorization callback is sent.
    let mut claims_needed = grants.claims_needed();
    if let Some(authorize) = &settings.authorize {
        claims_needed.extend(authorize.claims.iter().cloned());
    }
    let authorizer = optional(problems, settings.authorize.as_ref(), |authorize| {
        Authorizer::new(authorize.clone(), metrics.clone()).map_err(|e| format!("authorize: {e}"))
    });
    if let Some(Some(authorizer)) = &authorizer {
        call_out(reach, "authorize.url", problems, dependencies, || {
            authorizer.reach()
        })
        .await;
    }
    let playlists = optional(problems, settings.playlists.as_ref(), |playlists| {
        Playlists::new(playlists).map_err(|e| format!("playlists: {e}"))
    });
    if settings
        .server
        .admin_listen
        .is_some_and(|address| !address.ip().is_loopback())
        && settings.server.admin_token.is_none()
    {
        tracing::warn!(
            "server.admin_token is not set: admin actions (session revocation) are refused to \
             callers off loopback"
        );
    }
    let users = match &settings.auth.users {
        Some(users) => {
            let (file, demo) = (users.file.clone(), users.demo);
            let loaded = tokio::task::spawn_blocking(move || Users::load(file.as_deref(), demo))
                .await
                .map_err(|e| format!("auth.users: {e}"))
                .and_then(|loaded| loaded.map_err(|e| format!("auth.users.file: {e}")));
            if demo {
                tracing::warn!("demo user enabled (username demo, password demo): loopback only");
            }
            noted(problems, loaded.map(Some))
        }
        None => Some(None),
    };
    let jwt = match &settings.auth.jwt {
        Some(jwt) => noted(
            problems,
            JwtVerifier::new(jwt, claims_needed.clone(), reach == Reach::Serve)
                .await
                .map(Some)
                .map_err(|e| format!("auth.jwt: {e}")),
        ),
        None => Some(None),
    };
    if let Some(Some(verifier)) = &jwt
        && matches!(
            settings.auth.jwt.as_ref().map(|j| &j.key),
            Some(JwtKeySource::JwksUrl(_))
        )
    {
        call_out(reach, "auth.jwt.jwks_url", problems, dependencies, || {
            verifier.reach()
        })
        .await;
    }
    let oidc = optional(problems, settings.auth.oidc.as_ref(), |oidc| {
        OidcClient::new(
            oidc.clone(),
            claims_needed.clone(),
            grants.paths_claim.clone(),
        )
        .map_err(|e| format!("auth.oidc: {e}"))
    });
    if let Some(Some(client)) = &oidc {
        call_out(reach, "auth.oidc.issuer", problems, dependencies, || {
            client.reach()
        })
        .await;
    }
    let store = if reach == Reach::Offline {
        noted(problems, Store::check(&settings.session)).map(|()| None)
    } else {
        noted(problems, Store::new(&settings.session, metrics.clone())).map(Some)
    };
    if !matches!(settings.session.store, StoreKind::Memory) {
        // Offline there is no store to ping; one that could not be made has
        // its problem noted already.
        let store = store.as_ref().and_then(Option::as_ref);
        call_out(
            reach,
            "session.redis_url",
            problems,
            dependencies,
            || async move {
                match store {
                    Some(store) => store.ping().await,
                    None => Ok(()),
                }
            },
        )
        .await;
    }
    let tls = match &settings.server.tls {
        Some((cert, key)) => noted(
            problems,
            Tls::from_files(cert, key)
                .await
                .map(Some)
                .map_err(|e| format!("server.tls_cert: {e}")),
        ),
        None => Some(None),
    };
    let (
        Some(ring),
        Some(authorizer),
        Some(users),
        Some(jwt),
        Some(oidc),
        Some(store),
        Some(tls),
        Some(playlists),
    ) = (ring, authorizer, users, jwt, oidc, store, tls, playlists)
    else {
        return None;
    };
    problems.is_empty().then_some(Loaded {
        metrics,
        ring,
        ring_version: ring_version.flatten(),
        grants,
        authorizer,
        users,
        jwt,
        oidc,
        store,
        tls,
        playlists,
    })
}

/// Notes `key` as a network dependency the configuration has; with
/// [`Reach::Network`], calls it once and notes its failure by key.
async fn call_out<F>(
    reach: Reach,
    key: &'static str,
    problems: &mut Vec<String>,
    dependencies: &mut Vec<&'static str>,
    call: impl FnOnce() -> F,
) where
    F: Future<Output = Result<(), String>>,
{
    dependencies.push(key);
    if reach == Reach::Network
        && let Err(e) = call().await
    {
        problems.push(format!("{key}: {e}"));
    }
}

/// An optional part built when its section is there: `Some(None)` without
/// the section, `None` with its problem noted.
fn optional<S, T>(
    problems: &mut Vec<String>,
    section: Option<&S>,
    make: impl FnOnce(&S) -> Result<T, String>,
) -> Option<Option<T>> {
    match section {
        Some(section) => noted(problems, make(section).map(Some)),
        None => Some(None),
    }
}

/// The value, or `None` with its problem noted.
fn noted<T>(problems: &mut Vec<String>, result: Result<T, String>) -> Option<T> {
    result.map_err(|problem| problems.push(problem)).ok()
}

/// Every problem counted and indented, a line each, as configuration errors
/// are.
fn startup_problems(problems: &[String]) -> String {
    let lines: Vec<&str> = problems.iter().flat_map(|p| p.lines()).collect();
    let mut text = format!(
        "cannot start ({} problem{}):",
        lines.len(),
        if lines.len() == 1 { "" } else { "s" }
    );
    for line in lines {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}

/// Rate limits shared through Redis when sessions live there, else in process.
fn rate_limits(settings: &Settings, store: &Store) -> RateLimits {
    #[cfg(feature = "redis")]
    if let Some((pool, prefix)) = store.redis() {
        return RateLimits::shared(
            &settings.rate_limit,
            pool,
            prefix,
            settings.session.store_timeout,
        );
    }
    #[cfg(not(feature = "redis"))]
    let _ = store;
    RateLimits::new(&settings.rate_limit)
}
