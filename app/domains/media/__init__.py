"""Media customers send: downloaded from Meta by a worker, stored in MongoDB (GridFS layout), served to the workspace."""
