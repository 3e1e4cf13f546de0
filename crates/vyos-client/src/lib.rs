//! vyos-client
