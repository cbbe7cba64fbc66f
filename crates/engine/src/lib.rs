//! lifeboat-engine (being written)
