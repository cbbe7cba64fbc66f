//! lifeboat-parttable (being written)
