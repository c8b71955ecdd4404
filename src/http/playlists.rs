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
use crate::auth::path::{self, Match, RequestedPath};
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
    let (token, origin_query) = split_query(parts.uri.query());
    let path = playlist_path(&state, raw_path)?;
    let (identity, claims) = match token {
        Some(token) => {
            let claims = playlists
                .tokens
                .check(token, minter::now())
                .map_err(ApiError::PlaylistToken)?;
            let identity = claims.identity().ok_or(ApiError::PlaylistToken(
                crate::playlist::token::TokenError::Malformed,
            ))?;
            (identity, Some((claims, token.to_owned())))
        }
        None => (
            Caller::from_request_parts(&mut parts, &state)
                .await?
                .identity,
            None,
        ),
    };
    let outcome = serve(
        &state,
        playlists,
        ip,
        &identity,
        claims,
        &path,
        origin_query.as_deref(),
    )
    .await;
    match &outcome {
        Ok(_) => state.metrics.mint_outcome("playlists", "signed"),
        Err(error) => {
            state.metrics.mint_outcome("playlists", error.code());
            log_refused(&state, &identity, "playlists", path.as_str(), error);
        }
    }
    outcome
}

/// The `token` parameter, and the rest of the query for the origin.
fn split_query(query: Option<&str>) -> (Option<&str>, Option<String>) {
    let Some(query) = query else {
        return (None, None);
    };
    let mut token = None;
    let mut rest = Vec::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        match part.strip_prefix("token=") {
            Some(value) if token.is_none() => token = Some(value),
            _ => rest.push(part),
        }
    }
    (token, (!rest.is_empty()).then(|| rest.join("&")))
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

async fn serve(
    state: &AppState,
    playlists: &Playlists,
    ip: IpAddr,
    identity: &Identity,
    token: Option<(Claims, String)>,
    path: &RequestedPath,
    origin_query: Option<&str>,
) -> Result<Response, ApiError> {
    if let Some(query) = origin_query {
        path::check_query(query).map_err(ApiError::InvalidPath)?;
    }
    if let Some((claims, _)) = &token
        && !claims.covers(path.as_str())
    {
        return Err(ApiError::NotGranted);
    }
    check_limits(state, ip, identity).await?;
    // The playlist's own folder first: nothing is fetched for a caller who
    // may not have it.
    let max_len = state.settings.mint.max_path_length;
    let own = RequestedPath::with_match(folder_of(path.as_str()), max_len, Some(Match::Folder))
        .map_err(|e| ApiError::InvalidPath(e.to_string()))?;
    check_folders(state, identity, &[&own]).await?;
    let text = fetch(state, playlists, &own, path, origin_query).await?;
    let base_url = &state.settings.cloudfront.base_url;
    let location = Location {
        base_url,
        path: path.as_str(),
    };
    let playlist = Playlist::parse(&text, &location).map_err(|e| {
        ApiError::BadPlaylist(format!("the origin's playlist {}: {e}", path.as_str()))
    })?;

    // Every folder signed, and the folder the playlists it names share
    // (what their token covers), pass the same checks as /mint.
    let resources = playlist.resource_folders();
    let scope = (token.is_none())
        .then(|| token_scope(path.as_str(), playlist.targets()))
        .flatten();
    let mut folders: BTreeSet<&str> = resources.clone();
    folders.extend(scope.as_deref());
    let mut checked = Vec::with_capacity(folders.len());
    for folder in &folders {
        let folder =
            RequestedPath::with_match(folder, max_len, Some(Match::Folder)).map_err(|e| {
                ApiError::BadPlaylist(format!(
                    "the origin's playlist {} names the folder \"{}\", which cannot be signed: {e}",
                    path.as_str(),
                    folder.escape_debug()
                ))
            })?;
        if let Some((claims, _)) = &token
            && !claims.covers(folder.as_str())
        {
            return Err(ApiError::NotGranted);
        }
        checked.push(folder);
    }
    let paths: Vec<&RequestedPath> = checked.iter().collect();
    check_folders(state, identity, &paths).await?;

    let bound = bound_ip(state, ip)?;
    let mut queries = BTreeMap::new();
    for folder in checked
        .iter()
        .filter(|folder| resources.contains(folder.as_str()))
    {
        let request = MintRequest {
            ip: bound,
            ..MintRequest::new(folder)
        };
        let minted = sign(state, request).await?;
        log_signed(state, identity, "playlists", &minted, Match::Folder);
        queries.insert(folder.as_str().to_owned(), signed_query(&minted.signed));
    }
    let token = match token {
        Some((_, token)) => token,
        None => playlists.issue_token(
            identity,
            scope.unwrap_or_else(|| folder_of(path.as_str()).to_owned()),
            Match::Folder,
        ),
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
            out.push_str(&queries[target.folder()]);
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
/// every folder; the first refusal refuses the playlist.
async fn check_folders(
    state: &AppState,
    identity: &Identity,
    folders: &[&RequestedPath],
) -> Result<(), ApiError> {
    for verdict in check_access(state, identity, Purpose::Mint, folders).await {
        match verdict {
            Ok(()) => {}
            Err(ApiError::NoSuchFile) => return Err(ApiError::Refused("not_found".into())),
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The playlist from the origin; when the origin is the distribution,
/// fetched with a signature for the playlist's folder.
async fn fetch(
    state: &AppState,
    playlists: &Playlists,
    folder: &RequestedPath,
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
        let minted = sign(state, MintRequest::new(folder)).await?;
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
    fn the_token_parameter_is_taken_out_of_the_origin_query() {
        assert_eq!(split_query(None), (None, None));
        assert_eq!(split_query(Some("token=abc")), (Some("abc"), None));
        assert_eq!(
            split_query(Some("v=2&token=abc&x")),
            (Some("abc"), Some("v=2&x".into()))
        );
        assert_eq!(
            split_query(Some("token=a&token=b")),
            (Some("a"), Some("token=b".into()))
        );
    }
}
