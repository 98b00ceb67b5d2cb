"""gunicorn's settings for this app. gunicorn reads this file from the directory it starts in
(`gunicorn -k gevent -w 2 app:server` in the repository, as the README deploys it); options on
its command line win over it."""

# How long an idle connection is kept. A live dashboard asks for its charts' redraw every 2 s or
# more (assets/live.js) on the connection it used last; gunicorn's default, 2 s, closed it just
# as the next request came (a client sending every 2.0 s saw 8 % of its requests fail with
# "connection closed"), or made each redraw open a new connection. 75 s outlasts a page's redraw
# period and the idle timeout of common load balancers (60 s), so the balancer, not gunicorn,
# closes an idle connection to it. Under the gevent worker an idle connection costs a greenlet.
keepalive = 75
