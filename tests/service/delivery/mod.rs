//! What a signature opens, decided as CloudFront would: the local edge,
//! request paths through nginx, the grant proof, and playlists for players
//! without cookies.

pub mod edge;
mod grant_proof;
mod playlists;
mod traversal;
