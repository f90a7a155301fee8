"""The Developers page (issue 13 item 6): keys, webhook endpoints, the inbox, the explorer."""
