# Convenience targets; the README's two commands are ./scripts/quickstart and ./scripts/test.
.PHONY: test run deb repo lint clean

test:
	./scripts/test

run:
	./scripts/quickstart

# Builds the three .debs into dist/ (needs: ./scripts/setup-deps test, which has the build tools).
deb:
	./scripts/build-debs

# A signed apt repository of the .debs in dist/repo (the signing key stays in .pcci-repo-key).
repo:
	./scripts/build-repo

clean:
	rm -rf dist build .pybuild *.egg-info debian/.debhelper debian/files debian/*.substvars \
	       debian/python3-pcci debian/pcci-master debian/pcci-worker debian/debhelper-build-stamp
