"""Tables of 事務2/事務4: the provision record (in each register database) and the requester/affair
catalogue and media register (in the admin database). Created by migrations ``*_0005`` and
``admin_0002``.
"""
