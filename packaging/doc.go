// Package packaging holds the Debian package's files (nfpm.yaml, the
// .desktop entries, the default policy) and the test that builds the
// package, installs, upgrades and removes it with the real dpkg.
package packaging
