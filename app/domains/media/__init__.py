"""Media customers send: downloaded from Meta by a worker, stored in MongoDB (GridFS bucket "media"), served to the workspace."""
