"""HTTP beside the GraphQL endpoint: request body limits, the dashboard page, media serving and the OAuth callback."""
