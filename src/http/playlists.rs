//! `GET /playlists/<path>.m3u8`: an HLS playlist from `[playlists]
//! origin_url` with every URI rewritten for a player that cannot carry
//! cookies. Resources are signed with one wildcard policy per folder (from
//! the signature cache, so a live audience costs one signature per folder
//! and rounding window); other playlists come back through here with a
//! token. The caller is a session, a bearer token, or the `token` query
//! parameter; grants and the authorization callback decide on every folder
//! signed, as `/mint` does.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::{Caller, ClientIp};
use super::mint::{
    bound_ip, check_access, check_limits, log_refused, log_signed, sign, signed_query,
};
use super::state::AppState;
use crate::auth::Identity;
use crate::auth::authorize::Purpose;
use crate::auth::path::{Match, RequestedPath};
use crate::auth::proof::Scope;
use crate::minter::{self, MintRequest};
use crate::playlist::origin::FetchError;
use crate::playlist::token::Claims;
use crate::playlist::{Kind, Location, Playlist, Playlists, relative_reference};

/// Where the route is mounted; the rest of the request path is the
/// playlist's path on the distribution.
pub const PREFIX: &str = "/playlists";

pub async fn playlist(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = request.into_parts();
    let Some(playlists) = &state.playlists else {
        return Err(ApiError::NotFound);
    };
    let raw_path = parts.uri.path().strip_prefix(PREFIX).unwrap_or_default();
    let uri = parts.uri.clone();
    let query = split_query(uri.query())?;
    let path = playlist_path(&state, raw_path)?;
    let (caller, claims) = match query.token {
        Some(token) => {
            let claims = playlists
                .tokens
                .check(token, minter::now())
                .map_err(ApiError::PlaylistToken)?;
            let identity = claims.identity().ok_or(ApiError::PlaylistToken(
                crate::playlist::token::TokenError::Malformed,
            ))?;
            let caller = Caller {
                identity,
                session: None,
                ends: Some(claims.exp),
            };
            (caller, Some((claims, token.to_owned())))
        }
        None => (Caller::from_request_parts(&mut parts, &state).await?, None),
    };
    let identity = &caller.identity;
    let outcome = serve(
        &state,
        playlists,
        ip,
        &caller,
        claims,
        &path,
        query.origin.as_deref(),
    )
    .await;
    match &outcome {
        Ok(_) => state.metrics.mint_outcome("playlists", "signed"),
        Err(error) => {
            state.metrics.mint_outcome("playlists", error.code());
            log_refused(&state, identity, "playlists", path.as_str(), error);
        }
    }
    outcome
}

/// What a playlist request's query string may carry: cfmint's `token`, and
/// the Low-Latency HLS delivery directives, which go on to the origin in a
/// fixed order. Anything else is refused by name: a parameter passed on
/// could change what the origin answers for a path the grant proof never saw.
struct PlaylistQuery<'a> {
    token: Option<&'a str>,
    origin: Option<String>,
}

/// A delivery directive's name, and which values it takes.
type Directive = (&'static str, fn(&str) -> bool);

/// The delivery directives a player may add (HLS 6.2.5.1).
const DIRECTIVES: [Directive; 3] = [
    ("_HLS_msn", is_number),
    ("_HLS_part", is_number),
    ("_HLS_skip", |value| value == "YES" || value == "v2"),
];

fn is_number(value: &str) -> bool {
    !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit())
}

fn split_query(query: Option<&str>) -> Result<PlaylistQuery<'_>, ApiError> {
    let mut token = None;
    let mut directives: [Option<&str>; DIRECTIVES.len()] = [None; DIRECTIVES.len()];
    for part in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        if name == "token" && token.is_none() {
            token = Some(value);
            continue;
        }
        let known = DIRECTIVES
            .iter()
            .position(|(directive, _)| *directive == name);
        match known {
            Some(at) if directives[at].is_none() && (DIRECTIVES[at].1)(value) => {
                directives[at] = Some(value);
            }
            Some(_) => {
                return Err(ApiError::BadRequest(format!(
                    "the playlist query parameter {name} is repeated or has a value it cannot take"
                )));
            }
            None => {
                return Err(ApiError::BadRequest(format!(
                    "the playlist query parameter \"{}\" is not accepted; only token, _HLS_msn, _HLS_part and _HLS_skip are",
                    name.escape_debug()
                )));
            }
        }
    }
    let origin: Vec<String> = DIRECTIVES
        .iter()
        .zip(directives)
        .filter_map(|((name, _), value)| value.map(|value| format!("{name}={value}")))
        .collect();
    Ok(PlaylistQuery {
        token,
        origin: (!origin.is_empty()).then(|| origin.join("&")),
    })
}

/// The playlist's path on the distribution: checked like any path to sign,
/// and ending in `.m3u8`.
fn playlist_path(state: &AppState, raw: &str) -> Result<RequestedPath, ApiError> {
    if !raw.ends_with(".m3u8") {
        return Err(ApiError::InvalidPath(
            "a playlist path ends in .m3u8".into(),
        ));
    }
    RequestedPath::with_match(raw, state.settings.mint.max_path_length, Some(Match::Exact))
        .map_err(|e| ApiError::InvalidPath(e.to_string()))
}

/// What one policy signs for a resource at `path`: its folder, or, for a
/// token granting a prefix that the resource lies in, that prefix (so a
/// prefix grant's playlist signs no more than the prefix).
fn unit_of(claims: Option<&Claims>, path: &str) -> (String, Match) {
    match claims {
        Some(claims) if claims.shape == Match::Prefix && path.starts_with(&claims.path) => {
            (claims.path.clone(), Match::Prefix)
        }
        _ => (folder_of(path).to_owned(), Match::Folder),
    }
}

async fn serve(
    state: &AppState,
    playlists: &Playlists,
    ip: IpAddr,
    caller: &Caller,
    token: Option<(Claims, String)>,
    path: &RequestedPath,
    origin_query: Option<&str>,
) -> Result<Response, ApiError> {
    let identity = &caller.identity;
    let claims = token.as_ref().map(|(claims, _)| claims);
    if let Some(claims) = claims
        && !claims.covers(path.as_str())
    {
        return Err(ApiError::NotGranted);
    }
    check_limits(state, ip, identity).await?;
    // The playlist's own unit first: nothing is fetched for a caller who
    // may not have it.
    let max_len = state.settings.mint.max_path_length;
    let unit = |path: &str, shape| {
        RequestedPath::with_match(path, max_len, Some(shape))
            .map_err(|e| ApiError::InvalidPath(e.to_string()))
    };
    let (own_path, own_shape) = unit_of(claims, path.as_str());
    let own = unit(&own_path, own_shape)?;
    let own_scope = check_units(state, identity, claims, &[&own])
        .await?
        .remove(0);
    let text = fetch(
        state,
        playlists,
        caller,
        &own,
        &own_scope,
        path,
        origin_query,
    )
    .await?;
    let base_url = &state.settings.cloudfront.base_url;
    let location = Location {
        base_url,
        path: path.as_str(),
    };
    let playlist = Playlist::parse(&text, &location).map_err(|e| {
        ApiError::BadPlaylist(format!("the origin's playlist {}: {e}", path.as_str()))
    })?;

    // Every unit signed, and the folder the playlists it names share (what
    // their token covers), pass the same checks as /mint; the grant proof
    // holds every signature to what they allow and, with a token, to its
    // scope.
    let resources: BTreeSet<(String, Match)> = playlist
        .targets()
        .filter(|target| target.kind == Kind::Resource)
        .map(|target| unit_of(claims, &target.path))
        .collect();
    let handed_on = token
        .is_none()
        .then(|| token_scope(path.as_str(), playlist.targets()))
        .flatten();
    let mut units = Vec::with_capacity(resources.len() + 1);
    for (at, shape) in resources
        .iter()
        .map(|(at, shape)| (at.as_str(), *shape))
        .chain(handed_on.as_deref().map(|folder| (folder, Match::Folder)))
    {
        units.push(
            RequestedPath::with_match(at, max_len, Some(shape)).map_err(|e| {
                ApiError::BadPlaylist(format!(
                    "the origin's playlist {} names the folder \"{}\", which cannot be signed: {e}",
                    path.as_str(),
                    at.escape_debug()
                ))
            })?,
        );
    }
    let paths: Vec<&RequestedPath> = units.iter().collect();
    let scopes = check_units(state, identity, claims, &paths).await?;

    let bound = bound_ip(state, ip)?;
    let mut queries = BTreeMap::new();
    for (unit, scope) in units.iter().zip(&scopes).take(resources.len()) {
        let request = MintRequest {
            ip: bound,
            not_after: caller.ends,
            ..MintRequest::new(unit, scope)
        };
        let minted = sign(state, request).await?;
        log_signed(state, identity, "playlists", &minted, unit.shape());
        queries.insert(unit.as_str().to_owned(), signed_query(&minted.signed));
    }
    let token = match &token {
        Some((_, token)) => token.clone(),

        None => {
            let (handed, scope) = match handed_on {
                Some(_) => (units.last(), scopes.last()),
                None => (Some(&own), Some(&own_scope)),
            };
            let (handed, scope) = handed.zip(scope).expect("a unit and its scope");
            playlists
                .issue_token(base_url, identity, handed, scope, caller.ends)
                .map_err(|widening| ApiError::WidensGrant(widening.to_string()))?
        }
    };
    let body = playlist.render(|target, out| match target.kind {
        Kind::Resource => {
            out.push_str(base_url);
            out.push_str(&target.path);
            out.push('?');
            if let Some(query) = &target.query {
                out.push_str(query);
                out.push('&');
            }
            out.push_str(&queries[&unit_of(claims, &target.path).0]);
        }
        Kind::Playlist => {
            out.push_str(&relative_reference(path.as_str(), &target.path));
            out.push('?');
            if let Some(query) = &target.query {
                out.push_str(query);
                out.push('&');
            }
            out.push_str("token=");
            out.push_str(&token);
        }
    });
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Grants and the authorization callback, as `/mint` applies them, for
/// every unit, each scope narrowed to the token's when there is one; the
/// first refusal refuses the playlist.
async fn check_units(
    state: &AppState,
    identity: &Identity,
    claims: Option<&Claims>,
    units: &[&RequestedPath],
) -> Result<Vec<Scope>, ApiError> {
    let mut scopes = Vec::with_capacity(units.len());
    for verdict in check_access(state, identity, Purpose::Mint, units).await {
        let scope = match verdict {
            Ok(scope) => scope,
            Err(ApiError::NoSuchFile) => return Err(ApiError::Refused("not_found".into())),
            Err(error) => return Err(error),
        };
        scopes.push(match claims {
            Some(claims) => scope.and(vec![claims.pattern()]),
            None => scope,
        });
    }
    Ok(scopes)
}

/// The playlist from the origin; when the origin is the distribution,
/// fetched with a signature for the playlist's unit.
async fn fetch(
    state: &AppState,
    playlists: &Playlists,
    caller: &Caller,
    unit: &RequestedPath,
    scope: &Scope,
    path: &RequestedPath,
    origin_query: Option<&str>,
) -> Result<String, ApiError> {
    let mut target = path.as_str().to_owned();
    let mut separator = '?';
    if let Some(query) = origin_query {
        target.push('?');
        target.push_str(query);
        separator = '&';
    }
    if state
        .settings
        .playlists
        .as_ref()
        .is_some_and(|p| p.origin_signed)
    {
        let request = MintRequest {
            not_after: caller.ends,
            ..MintRequest::new(unit, scope)
        };
        let minted = sign(state, request).await?;
        target.push(separator);
        target.push_str(&signed_query(&minted.signed));
    }
    playlists
        .origin
        .fetch(&target)
        .await
        .map_err(|error| match error {
            FetchError::NotFound => ApiError::NoSuchPlaylist,
            error => ApiError::PlaylistOrigin(error.to_string()),
        })
}

/// The folder the playlist and every playlist it names lie in: what the
/// token handed on to them covers. `None` when it names none.
fn token_scope<'a>(
    path: &str,
    targets: impl Iterator<Item = &'a crate::playlist::Target>,
) -> Option<String> {
    let mut scope: Option<&str> = None;
    for target in targets.filter(|target| target.kind == Kind::Playlist) {
        let folder = target.folder();
        let shared = scope.unwrap_or(folder_of(path));
        let common = shared
            .char_indices()
            .zip(folder.chars())
            .take_while(|((_, a), b)| a == b)
            .filter(|((_, a), _)| *a == '/')
            .last()
            .map_or(0, |((at, _), _)| at + 1);
        scope = Some(&shared[..common]);
    }
    scope.map(str::to_owned)
}

fn folder_of(path: &str) -> &str {
    &path[..path.rfind('/').map_or(0, |at| at + 1)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist::Target;

    fn playlist(path: &str) -> Target {
        Target {
            kind: Kind::Playlist,
            path: path.into(),
            query: None,
        }
    }

    #[test]
    fn the_token_covers_the_folder_every_named_playlist_shares() {
        let scope = |targets: &[Target]| token_scope("/books/42/master.m3u8", targets.iter());
        assert_eq!(scope(&[]), None);
        assert_eq!(
            scope(&[
                playlist("/books/42/720/a.m3u8"),
                playlist("/books/42/480/a.m3u8")
            ]),
            Some("/books/42/".into())
        );
        assert_eq!(
            scope(&[playlist("/books/4/a.m3u8")]),
            Some("/books/".into())
        );
        assert_eq!(scope(&[playlist("/x.m3u8")]), Some("/".into()));
    }

    #[test]
    fn only_the_token_and_delivery_directives_pass() {
        let split = |query| {
            split_query(query)
                .map(|q| (q.token.map(str::to_owned), q.origin))
                .map_err(|e| e.to_string())
        };
        assert_eq!(split(None), Ok((None, None)));
        assert_eq!(split(Some("token=abc")), Ok((Some("abc".into()), None)));
        assert_eq!(
            split(Some("_HLS_skip=YES&token=abc&_HLS_msn=12")),
            Ok((Some("abc".into()), Some("_HLS_msn=12&_HLS_skip=YES".into())))
        );
        for (query, named) in [
            ("v=2", "\"v\""),
            ("x=/../../bob/x.m3u8", "\"x\""),
            ("token=a&token=b", "\"token\""),
            ("_HLS_msn=1&_HLS_msn=2", "_HLS_msn"),
            ("_HLS_msn=-1", "_HLS_msn"),
            ("_HLS_skip=maybe", "_HLS_skip"),
        ] {
            let error = split(Some(query)).expect_err(query);
            assert!(error.contains(named), "{query}: {error}");
        }
    }

    #[test]
    fn a_prefix_token_signs_its_prefix_and_nothing_beside_it() {
        let claims = Claims {
            id: String::new(),
            path: "/books/42/chapter1".into(),
            shape: Match::Prefix,
            exp: 0,
        };
        assert_eq!(
            unit_of(Some(&claims), "/books/42/chapter1_000.ts"),
            ("/books/42/chapter1".into(), Match::Prefix)
        );
        assert_eq!(
            unit_of(Some(&claims), "/books/42/chapter2_000.ts"),
            ("/books/42/".into(), Match::Folder)
        );
        assert_eq!(
            unit_of(None, "/books/42/chapter1_000.ts"),
            ("/books/42/".into(), Match::Folder)
        );
    }
}
