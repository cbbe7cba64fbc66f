//! lifeboat-repo (being written)
