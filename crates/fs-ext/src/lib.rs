//! lifeboat-fs-ext (being written)
