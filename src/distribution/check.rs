//! The findings: what in a distribution, read against cfmint's
//! configuration, will answer viewers 403 or leave content or cookies open.
//! Each names where it is, what follows from it, and the fix. The
//! origin-lock secret is compared, never shown.

use secrecy::ExposeSecret;
use serde::Serialize;
use subtle::ConstantTimeEq;

use super::model::{Behavior, Snapshot};
use super::patterns::{self, Undecided};
use crate::auth::path::RequestedPath;
use crate::config::{Ipv6Binding, Settings};

/// CloudFront takes at most this many public keys in one key group.
const KEYS_PER_GROUP: usize = 5;

/// The cookies CloudFront reads for a signed request.
const SIGNED_COOKIES: [&str; 4] = [
    "CloudFront-Policy",
    "CloudFront-Signature",
    "CloudFront-Key-Pair-Id",
    "CloudFront-Expires",
];

/// The header that carries the viewer's address to cfmint.
const VIEWER_ADDRESS: &str = "CloudFront-Viewer-Address";

/// cfmint's routes a browser reaches.
const ROUTES: [&str; 3] = ["/login", "/mint", "/logout"];

/// One problem, for people and for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable name of the kind of problem (`unrestricted-path`, ...).
    pub code: &'static str,
    /// Where: the behavior, origin, key group or setting.
    #[serde(rename = "where")]
    pub place: String,
    pub problem: String,
    pub consequence: String,
    pub fix: String,
}

/// What the check compares the distribution with.
pub struct Deployment<'a> {
    pub settings: &'a Settings,
    /// cfmint's keys: the key pair id and its public key as SPKI PEM.
    pub keys: Vec<(String, String)>,
    /// The key pair id cfmint signs with.
    pub active: String,
    /// The host viewers reach cfmint at, when given (`--cfmint-url`).
    pub cfmint_host: Option<String>,
}

/// The findings, and notes on what was not checked and why.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

/// The check could not decide (a document missing, patterns too intricate).
#[derive(Debug)]
pub struct CannotCheck(pub String);

impl From<Undecided> for CannotCheck {
    fn from(_: Undecided) -> Self {
        Self(
            "the path patterns are too intricate to decide which behavior serves which path".into(),
        )
    }
}

struct Check<'a> {
    snapshot: &'a Snapshot,
    deployment: &'a Deployment<'a>,
    report: Report,
    /// The path prefix of `cloudfront.base_url` (empty, or `/media`).
    prefix: String,
    base_host: String,
    /// The host viewers reach cfmint at, when known, and whether that is
    /// through this distribution.
    cfmint_host: Option<String>,
    through: bool,
    /// The origins serving cfmint's routes, when it is served through
    /// this distribution.
    cfmint_origins: Vec<String>,
}

pub fn check(snapshot: &Snapshot, deployment: &Deployment) -> Result<Report, CannotCheck> {
    let missing: Vec<String> = snapshot.wanted().iter().map(|w| w.command()).collect();
    if !missing.is_empty() {
        return Err(CannotCheck(format!(
            "the distribution refers to documents not given; save them with:\n  {}",
            missing.join("\n  ")
        )));
    }
    let base = url::Url::parse(&deployment.settings.cloudfront.base_url)
        .map_err(|e| CannotCheck(format!("cloudfront.base_url: {e}")))?;
    let mut check = Check {
        snapshot,
        deployment,
        report: Report::default(),
        prefix: base.path().trim_end_matches('/').to_owned(),
        base_host: base.host_str().unwrap_or_default().to_ascii_lowercase(),
        cfmint_host: None,
        through: false,
        cfmint_origins: Vec::new(),
    };
    check.locate_cfmint();
    let signed = check.signed_behaviors()?;
    check.keys(&signed);
    check.hosts();
    check.protocols(&signed);
    check.cors(&signed);
    check.ip_binding();
    check.cookies(&signed);
    check.cfmint_origin();
    Ok(check.report)
}

/// `#2 "/audio/*"` or `default`.
fn describe(index: usize, behavior: &Behavior) -> String {
    if behavior.is_default() {
        "the default behavior".to_owned()
    } else {
        format!("behavior #{} \"{}\"", index + 1, behavior.path_pattern)
    }
}

impl<'a> Check<'a> {
    fn behaviors(&self) -> &'a [Behavior] {
        &self.snapshot.config.behaviors
    }

    fn add(
        &mut self,
        code: &'static str,
        place: String,
        problem: String,
        consequence: &str,
        fix: String,
    ) {
        self.report.findings.push(Finding {
            code,
            place,
            problem,
            consequence: consequence.to_owned(),
            fix,
        });
    }

    /// The paths cfmint signs for, as distribution path patterns, each with
    /// where it comes from.
    fn signed_patterns(&mut self) -> Vec<(String, String)> {
        let settings = self.deployment.settings;
        let mut patterns = Vec::new();
        for (index, grant) in settings.grants.iter().enumerate() {
            for pattern in &grant.patterns {
                patterns.push((
                    format!("grants[{index}] \"{pattern}\""),
                    format!("{}{}", self.prefix, pattern.replace("{sub}", "*")),
                ));
            }
        }
        if let Some(path) = &settings.mint.default_path
            && let Ok(path) = RequestedPath::parse(path, usize::MAX)
        {
            patterns.push((
                format!("mint.default_path \"{}\"", path.as_str()),
                format!("{}{}", self.prefix, path.as_pattern()),
            ));
        }
        if let Some(claim) = settings
            .auth
            .jwt
            .as_ref()
            .and_then(|j| j.paths_claim.as_ref())
        {
            self.report.notes.push(format!(
                "paths that tokens carry in their \"{claim}\" claim are known only at mint \
                 time and were not checked"
            ));
        }
        if patterns.is_empty() {
            self.report
                .notes
                .push("no grants and no mint.default_path: no signed path to check".to_owned());
        }
        patterns
    }

    /// Which behaviors serve the paths cfmint signs for; an unrestricted one
    /// is a finding. The indexes of the restricted ones.
    fn signed_behaviors(&mut self) -> Result<Vec<usize>, CannotCheck> {
        let snapshot = self.snapshot;
        let behaviors = &snapshot.config.behaviors;
        let patterns: Vec<&str> = behaviors.iter().map(|b| b.path_pattern.as_str()).collect();
        let mut restricted = Vec::new();
        for (source, pattern) in self.signed_patterns() {
            for (index, path) in patterns::serving(&pattern, &patterns)? {
                let behavior = &behaviors[index];
                if behavior.is_restricted() {
                    if !restricted.contains(&index) {
                        restricted.push(index);
                    }
                    continue;
                }
                if self.cfmint_origins.contains(&behavior.target_origin_id) {
                    // cfmint's own routes: they serve no file.
                    continue;
                }
                let shadowed = behaviors[index + 1..]
                    .iter()
                    .position(|later| {
                        later.is_restricted() && patterns::matches(&later.path_pattern, &path)
                    })
                    .map(|later| index + 1 + later);
                let place = describe(index, behavior);
                let (problem, fix) = match shadowed {
                    Some(later) => (
                        format!(
                            "{place} restricts no viewer access and comes before {}, so it \
                             serves {source} (e.g. {path})",
                            describe(later, &behaviors[later])
                        ),
                        if behaviors[later].is_default() {
                            format!(
                                "restrict {place} to cfmint's key group, or narrow {source} so \
                                 that it does not reach {place}"
                            )
                        } else {
                            format!(
                                "move {} above {place}, or restrict {place} to cfmint's key group",
                                describe(later, &behaviors[later])
                            )
                        },
                    ),
                    None => (
                        format!(
                            "{place} serves {source} (e.g. {path}) and restricts no viewer access"
                        ),
                        format!(
                            "restrict viewer access on {place} to cfmint's key group (trusted key \
                             groups), or add a restricted behavior for \"{pattern}\" before it"
                        ),
                    ),
                };
                self.add(
                    "unrestricted-path",
                    place,
                    problem,
                    "anyone can fetch these files without a cookie or a signature",
                    fix,
                );
            }
        }
        restricted.sort_unstable();
        Ok(restricted)
    }

    /// Trusted signers, the active key in every group, the keys compared,
    /// keys cfmint no longer has, and room in the groups.
    fn keys(&mut self, signed: &[usize]) {
        let active = self.deployment.active.clone();
        let mut groups_seen: Vec<String> = Vec::new();
        for &index in signed {
            let behavior = self.behaviors()[index].clone();
            let place = describe(index, &behavior);
            if behavior.trusted_signers {
                self.add(
                    "legacy-trusted-signers",
                    place.clone(),
                    format!("{place} trusts legacy trusted signers (AWS account key pairs)"),
                    "CloudFront checks signatures against the accounts' CloudFront key pairs, \
                     not against cfmint's key: every request is answered 403",
                    format!("switch {place} to trusted key groups with cfmint's key group"),
                );
                continue;
            }
            let trusted = behavior
                .trusted_key_groups
                .iter()
                .any(|group| self.snapshot.key_groups[group].contains(&active));
            if !trusted {
                self.add(
                    "key-not-trusted",
                    place.clone(),
                    format!(
                        "cfmint signs with {active}, which no key group that {place} trusts ({}) holds",
                        behavior.trusted_key_groups.join(", ")
                    ),
                    "every cookie and URL cfmint signs is answered 403 here",
                    format!("add public key {active} to one of those key groups"),
                );
            }
            for group in &behavior.trusted_key_groups {
                if !groups_seen.contains(group) {
                    groups_seen.push(group.clone());
                }
            }
        }
        for group in groups_seen {
            self.key_group(&group);
        }
    }

    fn key_group(&mut self, group: &str) {
        let items = self.snapshot.key_groups[group].clone();
        let place = format!("key group {group}");
        for id in &items {
            match self.deployment.keys.iter().find(|(key, _)| key == id) {
                Some((_, pem)) => {
                    let theirs = &self.snapshot.public_keys[id];
                    if !same_key(id, theirs, pem) {
                        self.add(
                            "public-key-mismatch",
                            format!("public key {id}"),
                            format!(
                                "CloudFront's public key {id} is not the public half of the key \
                                 cfmint holds as {id}"
                            ),
                            "CloudFront rejects every signature cfmint makes with this key: 403",
                            format!(
                                "upload cfmint's public key (cfmint keys public --file …) as a new \
                                 public key, put it in {place}, and give cfmint its id"
                            ),
                        );
                    }
                }
                None => self.add(
                    "unknown-key",
                    place.clone(),
                    format!("{place} trusts public key {id}, which cfmint does not hold"),
                    "whoever holds that key's private half can still sign for this \
                     distribution; after a rotation it is the retired key left behind",
                    format!(
                        "remove {id} from {place} once nothing signs with it (cfmint keys retire \
                         --key-pair-id {id}), unless another signer uses it"
                    ),
                ),
            }
        }
        if items.len() + 1 >= KEYS_PER_GROUP {
            self.add(
                "key-group-full",
                place.clone(),
                format!(
                    "{place} holds {} of the {KEYS_PER_GROUP} keys a group may hold",
                    items.len()
                ),
                if items.len() >= KEYS_PER_GROUP {
                    "the next rotation cannot add its key"
                } else {
                    "one rotation fills the group; the one after cannot add its key"
                },
                "retire keys that no longer sign (cfmint keys retire)".to_owned(),
            );
        }
    }

    /// The base URL's host an alias, the cookies able to reach it.
    fn hosts(&mut self) {
        let settings = self.deployment.settings;
        let host = self.base_host.clone();
        let aliases = &self.snapshot.config.aliases;
        let served = self.answers(&host);
        let default_domain = host.ends_with(".cloudfront.net");
        // A cloudfront.net host cannot be compared without the distribution's
        // own domain name (get-distribution-config leaves it out).
        let unknowable = default_domain && self.snapshot.domain_name.is_none();
        if !(served || unknowable) {
            self.add(
                "base-url-not-alias",
                "cloudfront.base_url".to_owned(),
                format!(
                    "cloudfront.base_url's host {host} is not an alternate domain name of this \
                     distribution ({})",
                    if aliases.is_empty() {
                        "it has none".to_owned()
                    } else {
                        aliases.join(", ")
                    }
                ),
                "cookies and URLs are made for a host this distribution does not answer",
                format!(
                    "add {host} to the distribution's alternate domain names (with a certificate \
                         that covers it), or set cloudfront.base_url to one of them"
                ),
            );
        }
        if default_domain {
            self.add(
                "cloudfront-net-cookies",
                "cloudfront.base_url".to_owned(),
                format!("cloudfront.base_url is {host}, under cloudfront.net"),
                "cloudfront.net is on the Public Suffix List: no browser sends cookies set from \
                 your domain to it, so signed cookies never arrive (signed URLs still work)",
                "give the distribution an alternate domain name under your cookie domain \
                 (cdn.example.com) and set cloudfront.base_url to it"
                    .to_owned(),
            );
            return;
        }
        let domain = settings
            .cloudfront
            .cookies
            .domain_attribute()
            .map(str::to_ascii_lowercase);
        let cfmint_host = self.cfmint_host.clone();
        let place = "cloudfront.cookie_domain".to_owned();
        let never = "the browser never sends the cookies to the distribution: every request 403";
        match (&domain, &cfmint_host) {
            (Some(domain), _) if !under(&host, domain) => self.add(
                "cookie-domain",
                place,
                format!("cloudfront.cookie_domain {domain} does not cover {host}"),
                never,
                format!(
                    "set cloudfront.cookie_domain to a domain both {host} and cfmint's host are under"
                ),
            ),
            (Some(domain), Some(cfmint)) if !under(cfmint, domain) => self.add(
                "cookie-domain",
                place,
                format!("cloudfront.cookie_domain {domain} does not cover cfmint's host {cfmint}"),
                "the browser refuses cookies for a domain the host setting them is not under",
                format!("set cloudfront.cookie_domain to {}", common_domain(&host, cfmint)),
            ),
            (Some(domain), Some(cfmint)) => {
                let needed = common_domain(&host, cfmint);
                if *domain != needed {
                    self.add(
                        "cookie-domain-broad",
                        place,
                        if host == *cfmint {
                            format!(
                                "cloudfront.cookie_domain {domain} is broader than {needed}, \
                                 where both cfmint and the content are served"
                            )
                        } else {
                            format!(
                                "cloudfront.cookie_domain {domain} is broader than {needed}, \
                                 which covers both {host} and {cfmint}"
                            )
                        },
                        "every host under it receives the signed cookies, and any of them can \
                         overwrite them",
                        format!("set cloudfront.cookie_domain to {needed}"),
                    );
                }
            }
            (None, Some(cfmint)) if *cfmint != host => self.add(
                "cookie-domain",
                place,
                format!(
                    "no cloudfront.cookie_domain: the cookies stay on cfmint's host {cfmint}, \
                     not {host}"
                ),
                never,
                format!("set cloudfront.cookie_domain to {}", common_domain(&host, cfmint)),
            ),
            _ => {}
        }
    }

    /// Where cfmint is: `--cfmint-url`, else through this distribution
    /// when an origin carries the origin-lock header (on the base URL's
    /// host), else unknown.
    fn locate_cfmint(&mut self) {
        match self.deployment.cfmint_host.as_deref() {
            Some(host) => {
                self.cfmint_host = Some(host.to_ascii_lowercase());
                self.through = self.answers(&host.to_ascii_lowercase());
            }
            None => {
                self.through = self.origin_header_sent();
                self.cfmint_host = self.through.then(|| self.base_host.clone());
            }
        }
        if self.through {
            for index in self.route_behaviors() {
                let behavior = &self.behaviors()[index];
                let origin = &behavior.target_origin_id;
                if !behavior.is_restricted() && !self.cfmint_origins.contains(origin) {
                    self.cfmint_origins.push(origin.clone());
                }
            }
        }
    }

    /// Whether the distribution answers `host` (lowercase): an alternate
    /// domain name, or its own `*.cloudfront.net` name.
    fn answers(&self, host: &str) -> bool {
        let snapshot = self.snapshot;
        snapshot
            .config
            .aliases
            .iter()
            .any(|alias| alias_matches(&alias.to_ascii_lowercase(), host))
            || snapshot
                .domain_name
                .as_deref()
                .is_some_and(|own| own.eq_ignore_ascii_case(host))
    }

    /// The behaviors that serve cfmint's routes (the first match of each).
    fn route_behaviors(&self) -> Vec<usize> {
        let mut found = Vec::new();
        for route in ROUTES {
            let path = format!("{}{route}", self.prefix);
            if let Some(index) = self
                .behaviors()
                .iter()
                .position(|b| patterns::matches(&b.path_pattern, &path))
                && !found.contains(&index)
            {
                found.push(index);
            }
        }
        found
    }

    /// Whether some origin is sent `server.origin_header`.
    fn origin_header_sent(&self) -> bool {
        let Some((name, _)) = &self.deployment.settings.server.origin_lock else {
            return false;
        };
        self.snapshot.config.origins.iter().any(|o| {
            o.custom_headers
                .iter()
                .any(|(h, _)| h.eq_ignore_ascii_case(name.as_str()))
        })
    }

    /// HTTPS only where cookies or signatures travel.
    fn protocols(&mut self, signed: &[usize]) {
        for &index in signed {
            let behavior = &self.behaviors()[index];
            if behavior.viewer_protocol_policy == "allow-all" {
                let place = describe(index, behavior);
                self.add(
                    "viewer-http",
                    place.clone(),
                    format!("{place} lets viewers use plain HTTP"),
                    "browsers withhold Secure cookies from http:// requests (403), and signed URLs \
                     and cookies travel unencrypted",
                    format!(
                        "set {place}'s viewer protocol policy to redirect-to-https or https-only"
                    ),
                );
            }
        }
    }

    /// A response headers policy with CORS for every app origin, with
    /// credentials, where content is signed.
    fn cors(&mut self, signed: &[usize]) {
        let settings = self.deployment.settings;
        let own = format!("https://{}", self.base_host);
        let apps: Vec<&String> = settings
            .cors
            .allowed_origins
            .iter()
            .filter(|origin| origin.trim_end_matches('/') != own)
            .collect();
        if apps.is_empty() {
            return;
        }
        for &index in signed {
            let behavior = self.behaviors()[index].clone();
            let place = describe(index, &behavior);
            let cors = behavior
                .response_headers_policy_id
                .as_ref()
                .and_then(|id| self.snapshot.response_headers_policies[id].cors.clone());
            let Some(cors) = cors else {
                self.add(
                    "cors-missing",
                    place.clone(),
                    format!(
                        "{place} has no response headers policy with CORS, and the app calls from {}",
                        join(&apps)
                    ),
                    "players that fetch with credentials (hls.js, fetch) are refused by the \
                     browser: a CORS error instead of the media",
                    format!(
                        "attach a response headers policy to {place} with CORS: allowed origins {}, \
                         allow credentials",
                        join(&apps)
                    ),
                );
                continue;
            };
            let wildcard = cors.allow_origins.iter().any(|o| o == "*");
            if wildcard && cors.allow_credentials {
                self.add(
                    "cors-wildcard-credentials",
                    place.clone(),
                    format!("{place}'s CORS allows any origin (*) with credentials"),
                    "browsers refuse credentialed responses that allow *: players fail with a \
                     CORS error",
                    format!("list the app's origins ({}) instead of *", join(&apps)),
                );
            } else if !cors.allow_credentials {
                self.add(
                    "cors-no-credentials",
                    place.clone(),
                    format!("{place}'s CORS does not allow credentials"),
                    "browsers drop the answers to credentialed requests (the cookies are \
                     credentials): players fail with a CORS error",
                    format!("turn on Access-Control-Allow-Credentials in {place}'s response headers policy"),
                );
            }
            let missing: Vec<&String> = apps
                .iter()
                .copied()
                .filter(|app| {
                    !cors
                        .allow_origins
                        .iter()
                        .any(|o| o.trim_end_matches('/') == app.trim_end_matches('/'))
                })
                .collect();
            if !wildcard && !missing.is_empty() {
                self.add(
                    "cors-origin-missing",
                    place.clone(),
                    format!("{place}'s CORS does not allow {}", join(&missing)),
                    "players on those origins fail with a CORS error",
                    format!("add {} to the policy's allowed origins", join(&missing)),
                );
            }
        }
    }

    fn ip_binding(&mut self) {
        let mint = &self.deployment.settings.mint;
        if !(mint.ip_binding && self.snapshot.config.ipv6) {
            return;
        }
        let consequence = match mint.ipv6 {
            Ipv6Binding::Refuse => {
                "CloudFront's IpAddress condition is IPv4 only: IPv6 viewers \
                                    are refused (mint.ipv6 = \"refuse\")"
            }
            Ipv6Binding::Unbound => {
                "CloudFront's IpAddress condition is IPv4 only: IPv6 viewers \
                                     get cookies bound to no address (mint.ipv6 = \"unbound\")"
            }
        };
        self.add(
            "ip-binding-ipv6",
            "distribution".to_owned(),
            "mint.ip_binding is on and the distribution has IPv6 enabled".to_owned(),
            consequence,
            "turn IPv6 off on the distribution (IsIPV6Enabled false)".to_owned(),
        );
    }

    /// Signed cookies in cache keys, forwarded to content origins, or logged.
    fn cookies(&mut self, signed: &[usize]) {
        for &index in signed {
            let behavior = self.behaviors()[index].clone();
            let place = describe(index, &behavior);
            let (in_key, forwarded) = self.cookie_reach(&behavior);
            if let Some(names) = in_key {
                self.add(
                    "signed-cookies-cached",
                    place.clone(),
                    format!("{place}'s cache key includes {names}"),
                    "every viewer's cookies make a cache entry of their own (a cache hit ratio \
                     near zero), and the origin receives them",
                    format!("leave the CloudFront-* cookies out of {place}'s cache policy"),
                );
            } else if let Some(names) = forwarded {
                self.add(
                    "signed-cookies-forwarded",
                    place.clone(),
                    format!(
                        "{place} forwards {names} to origin \"{}\"",
                        behavior.target_origin_id
                    ),
                    "the origin receives every viewer's signed cookies, and its logs keep them",
                    format!(
                        "leave the CloudFront-* cookies out of {place}'s origin request policy"
                    ),
                );
            }
        }
        if self.snapshot.config.logs_cookies {
            self.add(
                "logging-cookies",
                "distribution logging".to_owned(),
                "standard logging includes cookies".to_owned(),
                "every viewer's signed cookies are written to the log bucket, where whoever reads \
                 the logs can replay them until they expire",
                "turn off cookie logging (IncludeCookies false)".to_owned(),
            );
        }
    }

    /// The signed cookies a behavior puts in its cache key, and those it
    /// forwards to the origin otherwise.
    fn cookie_reach(&self, behavior: &Behavior) -> (Option<String>, Option<String>) {
        let names = |f: &dyn Fn(&str) -> bool| {
            let named: Vec<&str> = SIGNED_COOKIES.into_iter().filter(|n| f(n)).collect();
            (!named.is_empty()).then(|| named.join(", "))
        };
        let in_key = match &behavior.cache_policy_id {
            Some(id) => names(&|n| self.snapshot.cache_policies[id].cookies.includes(n)),
            None => behavior
                .legacy
                .as_ref()
                .and_then(|legacy| names(&|n| legacy.cookies.includes(n))),
        };
        let forwarded = behavior.origin_request_policy_id.as_ref().and_then(|id| {
            names(&|n| {
                self.snapshot.origin_request_policies[id]
                    .cookies
                    .includes(n)
            })
        });
        (in_key, forwarded)
    }

    /// Whether a behavior sends the header to its origin.
    fn forwards_header(&self, behavior: &Behavior, name: &str) -> bool {
        let by_cache = match &behavior.cache_policy_id {
            Some(id) => self.snapshot.cache_policies[id].headers.includes(name),
            None => behavior.legacy.as_ref().is_some_and(|l| {
                l.headers
                    .iter()
                    .any(|h| h == "*" || h.eq_ignore_ascii_case(name))
            }),
        };
        by_cache
            || behavior
                .origin_request_policy_id
                .as_ref()
                .is_some_and(|id| {
                    self.snapshot.origin_request_policies[id]
                        .headers
                        .includes(name)
                })
    }

    /// cfmint's own origin, when it is served through this distribution:
    /// its routes unrestricted, the viewer's address and the origin lock.
    fn cfmint_origin(&mut self) {
        let settings = self.deployment.settings;
        let snapshot = self.snapshot;
        let config = &snapshot.config;
        let lock = settings.server.origin_lock.as_ref();
        let header_sent = self.origin_header_sent();
        if let Some((name, _)) = lock
            && !header_sent
        {
            self.add(
                "origin-lock-missing",
                "origins".to_owned(),
                format!("server.origin_header is {name}, and no origin of this distribution sends it"),
                "if cfmint is served through this distribution, cfmint refuses every request \
                 from it: 403 origin_locked",
                format!("add the custom header {name} with server.origin_secret's value to cfmint's origin"),
            );
        }
        if !self.through {
            self.report.notes.push(
                "cfmint's own routes were not checked: it is not served through this \
                 distribution (give --cfmint-url if it is)"
                    .to_owned(),
            );
            return;
        }
        let cfmint_behaviors = self.route_behaviors();
        let watched = !settings.server.trusted_proxies.is_empty() || settings.mint.ip_binding;
        let mut origins: Vec<String> = Vec::new();
        for index in cfmint_behaviors {
            let behavior = self.behaviors()[index].clone();
            let place = describe(index, &behavior);
            if behavior.is_restricted() {
                self.add(
                    "cfmint-restricted",
                    place.clone(),
                    format!("{place} serves cfmint's routes (/login, /mint) and requires a signature"),
                    "a viewer without cookies can never log in or mint: 403 before cfmint is reached",
                    format!("serve cfmint's routes from an unrestricted behavior before {place}"),
                );
                continue;
            }
            let allows = |m: &str| behavior.allowed_methods.iter().any(|a| a == m);
            if !(allows("POST") && allows("OPTIONS")) {
                self.add(
                    "cfmint-methods",
                    place.clone(),
                    format!("{place} serves cfmint's routes and does not allow POST and OPTIONS"),
                    "CloudFront answers POST /login and /mint, and CORS preflights, itself: 403",
                    format!("allow all HTTP methods on {place}"),
                );
            }
            if watched && !self.forwards_header(&behavior, VIEWER_ADDRESS) {
                self.add(
                    "viewer-address-not-forwarded",
                    place.clone(),
                    format!("{place} does not send {VIEWER_ADDRESS} to cfmint"),
                    "cfmint sees CloudFront's address for every viewer: IP-bound cookies fail \
                     (403) and rate limits count everyone at one edge together",
                    format!(
                        "attach an origin request policy forwarding {VIEWER_ADDRESS} to {place}"
                    ),
                );
            }
            if !origins.contains(&behavior.target_origin_id) {
                origins.push(behavior.target_origin_id.clone());
            }
        }
        if settings.server.trusted_proxies.is_empty() {
            self.add(
                "trusted-proxies-empty",
                "server.trusted_proxies".to_owned(),
                "cfmint is served through CloudFront and server.trusted_proxies is empty"
                    .to_owned(),
                "cfmint ignores CloudFront-Viewer-Address and takes CloudFront's address for \
                 the viewer's: IP-bound cookies fail (403) and rate limits lump viewers together",
                "list the addresses CloudFront (and any load balancer) connect from in \
                 server.trusted_proxies"
                    .to_owned(),
            );
        }
        let Some((name, secret)) = lock else {
            return;
        };
        if !header_sent {
            return;
        }
        for id in origins {
            let sent = config
                .origins
                .iter()
                .find(|o| o.id == id)
                .and_then(|o| {
                    o.custom_headers
                        .iter()
                        .find(|(h, _)| h.eq_ignore_ascii_case(name.as_str()))
                })
                .map(|(_, value)| value.clone());
            let place = format!("origin \"{id}\"");
            match sent {
                Some(value) if same_secret(&value, secret.expose_secret()) => {}
                Some(_) => self.add(
                    "origin-lock-mismatch",
                    place.clone(),
                    format!("{place} sends {name} with a value other than server.origin_secret"),
                    "cfmint refuses every request through CloudFront: 403 origin_locked",
                    format!(
                        "set the {name} custom header on {place} to server.origin_secret's value"
                    ),
                ),
                None => self.add(
                    "origin-lock-missing",
                    place.clone(),
                    format!("{place}, which serves cfmint's routes, does not send {name}"),
                    "cfmint refuses every request through CloudFront: 403 origin_locked",
                    format!(
                        "add the custom header {name} with server.origin_secret's value to {place}"
                    ),
                ),
            }
        }
    }
}

/// The secrets compared in constant time (for their common length).
fn same_secret(sent: &str, configured: &str) -> bool {
    bool::from(sent.as_bytes().ct_eq(configured.as_bytes()))
}

/// Whether CloudFront answers `host` for an alternate domain name (which
/// may be a wildcard, `*.example.com`).
fn alias_matches(alias: &str, host: &str) -> bool {
    match alias.strip_prefix("*.") {
        Some(parent) => host
            .strip_suffix(parent)
            .and_then(|label| label.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => alias == host,
    }
}

/// Whether `host` is `domain` or under it.
fn under(host: &str, domain: &str) -> bool {
    host == domain || host.ends_with(&format!(".{domain}"))
}

/// The longest domain both hosts are under (label by label from the right).
fn common_domain(a: &str, b: &str) -> String {
    let common: Vec<&str> = a
        .rsplit('.')
        .zip(b.rsplit('.'))
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect();
    common.into_iter().rev().collect::<Vec<_>>().join(".")
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether CloudFront's PEM and cfmint's public key are the same key.
fn same_key(id: &str, theirs: &str, ours: &str) -> bool {
    use crate::signer::{KeyPairId, KeySource, PublicKey};
    let Ok(id) = KeyPairId::new(id) else {
        return false;
    };
    PublicKey::from_pem(
        id,
        theirs,
        KeySource::Inline,
        crate::signer::Backend::default(),
    )
    .and_then(|key| key.to_pem())
    .is_ok_and(|pem| normalized(&pem) == normalized(ours))
}

fn normalized(pem: &str) -> String {
    pem.split_whitespace().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_aliases_answer_one_label() {
        assert!(alias_matches("*.example.com", "cdn.example.com"));
        assert!(!alias_matches("*.example.com", "a.cdn.example.com"));
        assert!(!alias_matches("*.example.com", "example.com"));
        assert!(alias_matches("cdn.example.com", "cdn.example.com"));
    }

    #[test]
    fn the_common_domain_is_taken_label_by_label() {
        assert_eq!(
            common_domain("cdn.example.com", "auth.example.com"),
            "example.com"
        );
        assert_eq!(
            common_domain("cdn.example.com", "cdn.example.com"),
            "cdn.example.com"
        );
        assert!(under("cdn.example.com", "example.com"));
        assert!(!under("cdnexample.com", "example.com"));
    }
}
