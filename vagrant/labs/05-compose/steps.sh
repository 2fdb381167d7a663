# Lab 05: compose networking. Run from this folder: the project is named after it.
minidock compose config
minidock compose up
minidock compose ps -a
minidock network inspect 05-compose_default
minidock compose -f apart.yml -p apart up -d
minidock wait apart_client || true
minidock logs apart_client
