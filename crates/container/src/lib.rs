//! lifeboat-container (being written)
