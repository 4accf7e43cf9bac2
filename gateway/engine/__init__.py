"""The publishing engine. Its doors are `queue` (the commands the API calls) and `scheduler` (what the roof starts); everything else here is internal to it."""
