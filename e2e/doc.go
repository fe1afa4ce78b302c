// Package e2e holds Shoal's end-to-end tests: the real shoal binary as a process, a real
// containerd (started privately by the tests), a real registry on 127.0.0.1 holding images
// built by the tests, and real Git repositories. They need root, containerd, runc and git;
// CI installs them. The package has no code outside its tests.
package e2e
