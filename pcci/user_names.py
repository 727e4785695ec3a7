"""The names of the users a job may run as: the one pattern the worker's allowed_users and
default_user and a job request's ``user`` are checked with."""

import re

# What Debian's adduser accepts, and root: a user a job may ask to run as.
# Checked with fullmatch (here and in every validator): "$" would also match before a final newline.
USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
