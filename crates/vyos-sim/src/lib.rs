//! vyos-sim
