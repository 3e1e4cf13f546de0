//! vmnet-core
