//go:build tools

// Package tools pins the MinIO server that the local platform builds from
// MinIO's own module as its S3-compatible object store.
package tools

import (
	_ "github.com/minio/minio"
)
