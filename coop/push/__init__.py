"""Web Push (RFC 8030, 8291, 8292): the devices an account registered, the service's VAPID key
pair, and the bounded sender that delivers to push services without ever holding up dispatch.

In the kernel because every domain notifies someone (an offer, a trip change, an appeal decided,
a vote opening) and the kernel is what they all may import; it knows no domain table (a device
belongs to an account: a role and a subject id, like a token). docs/push.md has the design.
"""
