"""What people do in chat: commands, the personal feed and its vectors, digests, workspaces, export."""
