#!/bin/sh
# Regenerates the htpasswd fixtures with Apache's htpasswd tool
# (apache2-utils). The generated files are committed, so the tests do not
# need the tool; run this only to refresh them. Line numbers of
# formats.htpasswd are asserted by htpasswd_test.go: keep the order.
set -eu
cd "$(dirname "$0")"

# entry ARGS...: one "user:hash" line (htpasswd -n adds a blank line).
entry() { htpasswd -n "$@" 2>/dev/null | head -n 1; }

# users.htpasswd: the users of backendtest.Users.
{
  entry -b -B alice 'correct horse battery'
  entry -b -5 bob 'Tr0ub4dor&3 ünïcode ✓'
} > users.htpasswd

# formats.htpasswd: every format, usable or not.
{
  echo '# Kisee htpasswd test fixture: one line per format.'              # 1
  entry -b -B -C 4 bcrypt4 'bcrypt password'                             # 2 usable
  entry -b -2 sha256 'sha256 password'                                   # 3 usable
  entry -b -5 -r 10000 sha512r 'sha512 password'                         # 4 usable
  echo ''                                                                # 5 blank
  entry -b -m apr1 'apr1 password'                                       # 6 APR1-MD5
  entry -b -s sha1 'sha1 password'                                       # 7 {SHA}
  entry -b -d des 'despassw'                                             # 8 crypt DES
  entry -b -p plain 'plain password'                                     # 9 plaintext
  echo 'no colon on this line'                                           # 10
  echo ':$2y$05$abcdefghijklmnopqrstuuFz3ZMr6YK0cRuE0PFQmeYRZiPyJX9dG'  # 11 empty user
  echo 'emptyhash:'                                                      # 12
  echo 'badbcrypt:$2y$05$tooshort'                                       # 13
  entry -b -B -C 4 bcrypt4 'another password'                            # 14 duplicate
  echo '   # an indented comment'                                        # 15
  echo 'toocostly:$2y$31$abcdefghijklmnopqrstuuFz3ZMr6YK0cRuE0PFQmeYRZiPyJX9dG' # 16 cost 31
  echo 'badsha:$6$salt$tooshort'                                         # 17
  printf 'crlf:%s\r\n' "$(entry -b -B -C 4 x 'crlf password' | cut -d: -f2)" # 18 usable, CRLF
} > formats.htpasswd
