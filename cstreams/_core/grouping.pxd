cpdef tuple group_messages(object messages)
