"""The staff's customer pages: `/customers/` (search, filter, sort, pages of 25) and
`/customers/<external_id>/` (everything about one customer, and the actions staff take on it)."""
