// Command registry serves the CNCF Distribution registry with only the drivers tests use
// (filesystem and in-memory storage, htpasswd auth), so the build leaves out the cloud SDKs
// that upstream's cmd/registry links in.
package main

import (
	"os"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func main() {
	if err := registry.RootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}
