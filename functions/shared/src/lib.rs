//! What the example handlers share: JSON responses with CORS headers, signed
//! search tokens, the search request and offer types, and AWS client setup.

pub mod aws;
pub mod http;
pub mod search;
pub mod token;
